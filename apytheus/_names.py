"""BASE: metric and label names outside the classic character set, and how they are escaped.

Prometheus 3 takes any UTF-8 name. A scraper says with the ``escaping=``
parameter of its ``Accept`` header how it wants names it cannot take written:

* ``allow-utf-8``: as they are, quoted where the classic syntax cannot carry them;
* ``underscores`` (the default): every character outside the classic set becomes ``_``;
* ``dots``: ``_`` becomes ``__``, ``.`` becomes ``_dot_``, anything else invalid ``__``
  (classic names too: their underscores double);
* ``values``: ``U__`` then the name, ``_`` doubled and anything invalid as ``_<hex>_``.

The output is byte for byte what prometheus_client 0.26 (``escape_metric_name``,
``escape_label_name``) and client_golang write.
"""

from __future__ import annotations

import functools
import re
from typing import Final

ALLOW_UTF8: Final = "allow-utf-8"
UNDERSCORES: Final = "underscores"
DOTS: Final = "dots"
VALUES: Final = "values"
ESCAPINGS: Final = (ALLOW_UTF8, UNDERSCORES, DOTS, VALUES)

LEGACY_METRIC_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LEGACY_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def is_legacy_metric_name(name: str) -> bool:
    """Whether ``name`` is in the classic metric name set ``[a-zA-Z_:][a-zA-Z0-9_:]*``."""
    return LEGACY_METRIC_NAME.fullmatch(name) is not None


def is_legacy_label_name(name: str) -> bool:
    """Whether ``name`` is a classic label name (``[a-zA-Z_][a-zA-Z0-9_]*``, no ``__`` start)."""
    return LEGACY_LABEL_NAME.fullmatch(name) is not None and not name.startswith("__")


@functools.lru_cache(maxsize=4096)
def escape_metric_name(name: str, escaping: str) -> str:
    """``name`` as written under ``escaping`` (quoted under ``allow-utf-8`` if not classic)."""
    return _escape_name(name, escaping, is_legacy_metric_name(name), True)


@functools.lru_cache(maxsize=4096)
def escape_label_name(name: str, escaping: str) -> str:
    """A label name as written under ``escaping`` (quoted under ``allow-utf-8`` if not classic)."""
    return _escape_name(name, escaping, is_legacy_label_name(name), False)


def quote(text: str) -> str:
    """``text`` in double quotes, with backslash, newline and double quote escaped."""
    if "\\" in text or '"' in text or "\n" in text:
        text = text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return f'"{text}"'


def _escape_name(name: str, escaping: str, legacy: bool, metric: bool) -> str:
    if not name or (legacy and escaping != DOTS):
        return name
    if escaping == ALLOW_UTF8:
        return quote(name)
    out: list[str] = ["U__"] if escaping == VALUES else []
    for i, c in enumerate(name):
        valid = _legacy_rune(c, i) or (metric and c == ":")
        if escaping == UNDERSCORES:
            out.append(c if valid else "_")
        elif c == "_":
            out.append("__")
        elif escaping == DOTS:
            out.append("_dot_" if c == "." else c if valid else "__")
        elif valid:
            out.append(c)
        elif 0xD800 <= ord(c) <= 0xDFFF:  # a lone surrogate: not a Unicode scalar value
            out.append("_FFFD_")
        else:
            out.append(f"_{ord(c):x}_")
    return "".join(out)


def _legacy_rune(c: str, i: int) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z" or c == "_" or ("0" <= c <= "9" and i > 0)
