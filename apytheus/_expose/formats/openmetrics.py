"""The OpenMetrics 1.0.0 text format (``_created``, exemplars, ``# UNIT``, ``# EOF``)."""

from __future__ import annotations

from collections.abc import Iterable

from ..._labels import has_quoted_names
from ..._names import ALLOW_UTF8, DOTS, UNDERSCORES, escape_metric_name
from ..._samples import Exemplar, MetricFamily, floatstr
from ._lines import braces, labels_text, plain, series_text, value

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def escape_help(text: str) -> str:
    """Escape HELP text: backslash, newline and double quote."""
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def encode(
    families: Iterable[MetricFamily],
    eof: bool = True,
    headers: bool = True,
    escaping: str = UNDERSCORES,
    classic: bool | None = None,
) -> str:
    """Render families as OpenMetrics text, ending with ``# EOF`` unless ``eof`` is false.

    ``headers=False`` leaves out HELP, TYPE and UNIT: for a family rendered in chunks.
    ``escaping`` and ``classic`` as for `apytheus._expose.formats.text.encode`.
    """
    out: list[str] = []
    add = out.append
    for fam in families:
        if headers:
            name = escape_metric_name(fam.name, escaping)
            add(f"# HELP {name} {escape_help(fam.documentation)}\n")
            add(f"# TYPE {name} {fam.type}\n")
            if fam.unit:
                add(f"# UNIT {name} {fam.unit}\n")
        fast = classic if classic is not None else plain(fam, escaping)
        for s in fam.samples:
            line = (
                f"{s.name}{braces(s)} {value(s.value)}"
                if fast
                else f"{series_text(s, escaping)} {value(s.value)}"
            )
            ex = s.exemplar
            if ex is not None:
                line += f" # {{{_exemplar_labels(ex, escaping)}}} {floatstr(ex.value)} "
                line += f"{ex.timestamp:.3f}"
            add(line + "\n")
    if eof:
        add("# EOF\n")
    return "".join(out)


def _exemplar_labels(ex: Exemplar, escaping: str) -> str:
    text = ex.labels.text
    if escaping == DOTS or (escaping != ALLOW_UTF8 and has_quoted_names(text)):
        return labels_text(ex.labels.pairs, escaping)
    return text
