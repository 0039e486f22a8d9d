"""BASE: samples and families as collection hands them to the encoders (pure data).

Also the exemplar a series keeps, and how Prometheus clients write a float.
Nothing here knows metrics, backends or formats.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ._labels import EMPTY_LABELS, LabelSet


class Exemplar(NamedTuple):
    """An exemplar attached to a counter increment or a histogram bucket."""

    labels: LabelSet
    value: float
    timestamp: float


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
    stateset or unknown. ``unit`` is the OpenMetrics unit ('' for none).
    """

    name: str
    documentation: str
    type: str
    samples: list[Sample]
    unit: str = ""


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


def counter_family(
    name: str, documentation: str, label: str, counts: dict[str, int]
) -> MetricFamily:
    """A counter family built from plain counts (for the library's own metrics)."""
    return MetricFamily(
        name,
        documentation,
        "counter",
        [
            Sample(name + "_total", LabelSet((label,), (k,)) if label else EMPTY_LABELS, float(v))
            for k, v in sorted(counts.items())
        ],
    )
