"""Samples: what collection hands to the encoders, built from a family's series."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import NamedTuple

from ._family import Family
from ._labels import EMPTY_LABELS, LabelSet
from .backends._protocol import Series
from .backends._series import Exemplar, HistogramSeries, InfoSeries, ScalarSeries

log = logging.getLogger("apytheus")


class Sample(NamedTuple):
    """One line of exposition: a sample name, its labels and its value.

    ``extra`` is a label added by the type (``le``, or an Enum's state) that
    is not part of the series' own labels.
    """

    name: str
    labels: LabelSet
    value: float
    exemplar: Exemplar | None = None
    extra: tuple[str, str] | None = None

    def label_dict(self) -> dict[str, str]:
        """Every label of the sample as a dict (``extra`` included)."""
        out = self.labels.as_dict()
        if self.extra is not None:
            out[self.extra[0]] = self.extra[1]
        return out


class MetricFamily(NamedTuple):
    """A metric as exposed: name (without type suffixes), help, type and samples.

    ``type`` is an OpenMetrics type: counter, gauge, histogram, summary, info,
    stateset or unknown.
    """

    name: str
    documentation: str
    type: str
    samples: list[Sample]


def floatstr(value: float) -> str:
    """Format a float as Prometheus clients do (Go's style for ``le`` bounds)."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value != value:
        return "NaN"
    s = repr(float(value))
    dot = s.find(".")
    if value > 0 and dot > 6:  # Go switches to exponent notation sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def build_family(
    family: Family, name: str, series: Sequence[Series], openmetrics: bool
) -> MetricFamily:
    """Turn a family's series into samples (for OpenMetrics when ``openmetrics``).

    OpenMetrics adds ``_created`` samples and, as its spec requires, leaves out
    a ``_sum`` that is not a counter: a negative or NaN one (after negative
    observations), and every ``_sum`` of a histogram with a negative bucket
    bound. A histogram drops its ``_count`` along with its ``_sum`` (the
    ``+Inf`` bucket still holds the count). The text format shows them all.
    """
    kind = family.kind
    samples: list[Sample] = []
    add = samples.append
    if kind in ("counter", "gauge"):
        total = name + "_total" if kind == "counter" else name
        created_name = name + "_created"
        for s in series:
            assert isinstance(s, ScalarSeries)
            try:
                value = s.value()
            except Exception:  # a gauge's set_function failed: leave that series out
                log.exception("apytheus: the function of %s{%s} failed", name, s.labels.text)
                continue
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
            if openmetrics and (negative_bounds or not total_sum >= 0):
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
            add(Sample(name + "_info", LabelSet(s.labels.pairs + s.info), 1.0))
    elif kind == "stateset":
        for s in series:
            assert isinstance(s, ScalarSeries)
            current = s.value()
            for i, state in enumerate(family.states):
                # OpenMetrics: the state label is named after the exposed family
                add(Sample(name, s.labels, 1.0 if i == current else 0.0, None, (name, state)))
    return MetricFamily(name, family.documentation, kind, samples)


def counter_family(
    name: str, documentation: str, label: str, counts: dict[str, int]
) -> MetricFamily:
    """A counter family built from plain counts (for the library's own metrics)."""
    return MetricFamily(
        name,
        documentation,
        "counter",
        [
            Sample(name + "_total", LabelSet(((label, k),)) if label else EMPTY_LABELS, float(v))
            for k, v in sorted(counts.items())
        ],
    )
