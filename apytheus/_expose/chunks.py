"""EXPOSE: a registered metric's samples, built a few hundred at a time, for every encoder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .._collect.build import build_family
from .._names import DOTS, is_legacy_label_name, is_legacy_metric_name
from .._record.family import Family
from .._samples import MetricFamily
from ..backends._protocol import Series

CHUNK_SAMPLES = 300  # samples built (and freed) at a time


def built_chunks(
    family: Family, name: str, series: Sequence[Series], created: bool
) -> Iterator[tuple[MetricFamily, bool]]:
    """A family's samples, built `CHUNK_SAMPLES` at a time, and whether each chunk is the first."""
    step = max(1, CHUNK_SAMPLES // samples_per_series(family, created))
    for start in range(0, max(len(series), 1), step):
        chunk = series[start : start + step]
        yield build_family(family, name, chunk, created), start == 0


def classic_names(family: Family, name: str, escaping: str) -> bool:
    """Whether every name a family writes is classic, and written as it is under ``escaping``."""
    return (
        escaping != DOTS
        and is_legacy_metric_name(name)
        and all(map(is_legacy_label_name, family.label_names))
        and (family.kind != "stateset" or is_legacy_label_name(name))
        and family.kind != "info"  # its keys are the series', not among the label names
    )


def samples_per_series(family: Family, openmetrics: bool) -> int:
    kind = family.kind
    if kind in ("histogram", "summary"):
        buckets = len(family.bounds) + 1 if kind == "histogram" else 0
        return buckets + 3
    if kind == "stateset":
        return max(1, len(family.states))
    return 2 if openmetrics and kind == "counter" else 1
