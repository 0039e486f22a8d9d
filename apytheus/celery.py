"""Celery: flush what each prefork child recorded before the child exits.

Celery's prefork pool (billiard) forks its children from the worker's main
process, and the backend's fork handling gives each child its own worker id,
buffer, connection and flusher. But a child ends with ``os._exit``, whether it
is recycled (``--max-tasks-per-child``, ``--max-memory-per-child``) or stopped
with the worker (a warm shutdown): ``atexit`` handlers do not run there, so
without a hook what the child recorded since its last flush (up to
``flush_interval``) is lost. Celery calls its ``worker_process_shutdown``
signal in the child just before that exit; `install` connects `close_backend`
to it.

Importing this module does not import Celery; `install` does.
"""

from __future__ import annotations

from typing import Any

import anyio

from .backends import SupportsClose, get_backend

__all__ = ["close_backend", "install"]

DISPATCH_UID = "apytheus.celery.close_backend"


def close_backend(**signal_kwargs: Any) -> None:
    """Flush the process' backend a last time and close it (blocking).

    A receiver for Celery's ``worker_process_shutdown`` signal (it takes and
    ignores the signal's keyword arguments). The Redis backend sends what was
    recorded since its last flush, then stops its flusher and disconnects; if
    Redis cannot be reached, that is logged and the child exits all the same.
    A backend without ``close()`` gets its ``flush()``.
    """
    backend = get_backend()
    if isinstance(backend, SupportsClose):
        backend.close()
    else:
        anyio.run(backend.flush)


def install() -> None:
    """Flush each Celery pool child's metrics when it exits.

    Call it where the Celery app is defined, so that the worker's main process
    connects the hook before it forks the children. Calling it again does
    nothing more.

    Raises:
        ImportError: Celery is not installed.

    Example:
        >>> from celery import Celery
        >>> import apytheus.celery
        >>> app = Celery("tasks", broker="redis://127.0.0.1:6379/0")
        >>> apytheus.celery.install()
    """
    try:
        from celery.signals import worker_process_shutdown  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(
            "apytheus.celery.install() needs Celery: pip install 'apytheus[celery]'"
        ) from exc
    worker_process_shutdown.connect(close_backend, weak=False, dispatch_uid=DISPATCH_UID)
