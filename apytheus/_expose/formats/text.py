"""The Prometheus text format 0.0.4 (and 1.0.0, quoting UTF-8 names) as prometheus_client writes."""

from __future__ import annotations

from collections.abc import Iterable

from ..._names import UNDERSCORES, escape_metric_name
from ..._samples import MetricFamily
from ._lines import braces, plain, series_text, value

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"

_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "info": "gauge",
    "stateset": "gauge",
}


def escape_help(text: str) -> str:
    """Escape HELP text: backslash and newline."""
    return text.replace("\\", r"\\").replace("\n", r"\n")


def encode(
    families: Iterable[MetricFamily],
    headers: bool = True,
    escaping: str = UNDERSCORES,
    classic: bool | None = None,
) -> str:
    """Render families as text 0.0.4 (a counter's HELP/TYPE name ends in ``_total``).

    ``headers=False`` leaves out HELP and TYPE: for a family rendered in chunks.
    ``escaping`` says how names outside the classic set are written;
    ``classic=True`` says that the families have none (the caller knows: no check).
    """
    out: list[str] = []
    add = out.append
    for fam in families:
        if headers:
            name = fam.name
            if fam.type == "counter":
                name += "_total"
            elif fam.type == "info":
                name += "_info"
            name = escape_metric_name(name, escaping)
            add(f"# HELP {name} {escape_help(fam.documentation)}\n")
            add(f"# TYPE {name} {_TYPES.get(fam.type, 'untyped')}\n")
        if not (classic if classic is not None else plain(fam, escaping)):
            for s in fam.samples:
                add(f"{series_text(s, escaping)} {value(s.value)}\n")
            continue
        for s in fam.samples:
            if s.extra is None:
                text = s.labels.text
                add(
                    f"{s.name}{{{text}}} {value(s.value)}\n"
                    if text
                    else f"{s.name} {value(s.value)}\n"
                )
            else:
                add(f"{s.name}{braces(s)} {value(s.value)}\n")
    return "".join(out)
