"""EXPOSE: leave a registry in a ``.prom`` file for the node exporter's textfile collector."""

from __future__ import annotations

import contextlib
import os
import threading

from ..registry import REGISTRY, Registry
from .render import generate_metrics

__all__ = ["write_to_textfile"]


def write_to_textfile(
    path: str | os.PathLike[str], registry: Registry = REGISTRY, escaping: str = "underscores"
) -> None:
    """Write ``registry`` to ``path`` for the node exporter's textfile collector (blocking).

    The text (format 0.0.4) goes to a temporary file next to ``path``, which
    then replaces ``path`` in one atomic rename: the collector reads either
    the previous file or the new one, never half of one. The temporary file
    does not end in ``.prom``, so the collector never reads it, and it is
    removed if anything fails. The collector only reads files whose names end
    in ``.prom``; the file gets the permissions of any new file (the umask).

    Args:
        path: the file to write, in the collector's ``--collector.textfile.directory``.
        registry: what to write.
        escaping: how names outside the classic set are written (see
            `generate_metrics`); ``allow-utf-8`` quotes them, for a node exporter
            that reads UTF-8 names.

    Raises:
        OSError: the file cannot be written; ``path`` is left as it was.
        ValueError: ``escaping`` is not one of the four schemes.

    Examples:
        >>> import os, tempfile
        >>> from apytheus import CollectorRegistry, Gauge, write_to_textfile
        >>> registry = CollectorRegistry()
        >>> done = Gauge("backup_last_success_unixtime", "Last good backup", registry=registry)
        >>> done.set(1700000000)
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     path = os.path.join(directory, "backup.prom")
        ...     write_to_textfile(path, registry)
        ...     with open(path, encoding="utf-8") as f:
        ...         print(f.read(), end="")
        # HELP backup_last_success_unixtime Last good backup
        # TYPE backup_last_success_unixtime gauge
        backup_last_success_unixtime 1700000000.0
    """

    target = os.fspath(path)
    data = generate_metrics(registry, escaping=escaping).encode()
    # Same directory, so that os.replace is a rename within one filesystem (atomic);
    # pid and thread make the name unique among concurrent writers.
    temporary = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
