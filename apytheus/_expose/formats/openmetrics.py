"""The OpenMetrics 1.0.0 text format (``_created``, exemplars, ``# EOF``)."""

from __future__ import annotations

from collections.abc import Iterable

from ..._samples import MetricFamily, floatstr
from ._lines import braces, value

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def escape_help(text: str) -> str:
    """Escape HELP text: backslash, newline and double quote."""
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def encode(families: Iterable[MetricFamily], eof: bool = True, headers: bool = True) -> str:
    """Render families as OpenMetrics text, ending with ``# EOF`` unless ``eof`` is false.

    ``headers=False`` leaves out HELP and TYPE: for a family rendered in chunks.
    """
    out: list[str] = []
    add = out.append
    for fam in families:
        if headers:
            add(f"# HELP {fam.name} {escape_help(fam.documentation)}\n")
            add(f"# TYPE {fam.name} {fam.type}\n")
        for s in fam.samples:
            line = f"{s.name}{braces(s)} {value(s.value)}"
            ex = s.exemplar
            if ex is not None:
                line += f" # {{{ex.labels.text}}} {floatstr(ex.value)} {ex.timestamp:.3f}"
            add(line + "\n")
    if eof:
        add("# EOF\n")
    return "".join(out)
