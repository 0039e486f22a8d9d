"""COLLECT: turn a metric's series into the samples the encoders write."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .._labels import LabelSet
from .._record.family import Family
from .._samples import MetricFamily, Sample, floatstr
from ..backends._protocol import Series
from ..backends._series import HistogramSeries, InfoSeries, ScalarSeries

log = logging.getLogger("apytheus")


def build_family(
    family: Family, name: str, series: Sequence[Series], openmetrics: bool, every_sum: bool = False
) -> MetricFamily:
    """Turn a family's series into samples (for OpenMetrics when ``openmetrics``).

    OpenMetrics adds ``_created`` samples and, as its spec requires, leaves out
    a ``_sum`` that is not a counter: a negative or NaN one (after negative
    observations), and every ``_sum`` of a histogram with a negative bucket
    bound. A histogram drops its ``_count`` along with its ``_sum`` (the
    ``+Inf`` bucket still holds the count). The text format shows them all, and
    so does ``every_sum``: the samples protobuf carries (``_created`` and every
    ``_sum``), which its encoder writes straight from the series.
    """
    kind = family.kind
    samples: list[Sample] = []
    add = samples.append
    if kind in ("counter", "gauge"):
        total = name + "_total" if kind == "counter" else name
        created_name = name + "_created"
        for s in series:
            assert isinstance(s, ScalarSeries)
            # ScalarSeries.value, inlined: one call less per series
            value = float(sum(s.cells)) if s.function is None else function_value(s, name)
            if value is None:
                continue  # its function failed: left out
            add(Sample(total, s.labels, value, s.exemplar))
            if openmetrics and kind == "counter":
                add(Sample(created_name, s.labels, s.created))
    elif kind in ("histogram", "summary"):
        names = (name + "_bucket", name + "_count", name + "_sum", name + "_created")
        les = [("le", floatstr(b)) for b in family.bounds] + [("le", "+Inf")]
        negative_bounds = bool(family.bounds) and family.bounds[0] < 0  # bounds are sorted
        for s in series:
            assert isinstance(s, HistogramSeries)
            counts, total_sum = s.snapshot()
            if kind == "histogram":
                cumulative = 0.0
                for i, le in enumerate(les):
                    cumulative += counts[i]
                    add(Sample(names[0], s.labels, cumulative, s.exemplars[i], le))
            # `not total_sum >= 0`: negative or NaN
            if openmetrics and not every_sum and (negative_bounds or not total_sum >= 0):
                if kind == "summary":
                    add(Sample(names[1], s.labels, float(sum(counts))))
            else:
                add(Sample(names[1], s.labels, float(sum(counts))))
                add(Sample(names[2], s.labels, total_sum))
            if openmetrics:
                add(Sample(names[3], s.labels, s.created))
    elif kind == "info":
        for s in series:
            assert isinstance(s, InfoSeries)
            add(Sample(name + "_info", LabelSet.from_pairs(s.labels.pairs + s.info), 1.0))
    elif kind == "stateset":
        for s in series:
            assert isinstance(s, ScalarSeries)
            current = s.value()
            for i, state in enumerate(family.states):
                # OpenMetrics: the state label is named after the exposed family
                add(Sample(name, s.labels, 1.0 if i == current else 0.0, None, (name, state)))
    return MetricFamily(name, family.documentation, kind, samples, family.unit)


def function_value(series: ScalarSeries, name: str) -> float | None:
    """The value of a gauge whose value is a function, or None (logged) if the function fails."""
    assert series.function is not None
    try:
        return float(series.function())
    except Exception:  # a gauge's set_function failed: leave that series out
        log.exception("apytheus: the function of %s{%s} failed", name, series.labels.text)
        return None
