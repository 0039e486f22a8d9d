"""What both text formats share: label braces and sample values."""

from __future__ import annotations

from ..._labels import escape_label_value
from ..._samples import Sample, floatstr


def braces(sample: Sample) -> str:
    """The ``{…}`` part of a sample line ('' when it has no labels)."""
    text = sample.labels.text
    extra = sample.extra
    if extra is not None:
        pair = f'{extra[0]}="{escape_label_value(extra[1])}"'
        text = f"{text},{pair}" if text else pair
    return f"{{{text}}}" if text else ""


def value(v: float) -> str:
    """A sample value: ``repr`` of the float, or ``+Inf`` / ``-Inf`` / ``NaN``."""
    if v.__class__ is float and v - v == 0.0:  # finite float: the common case
        return repr(v)
    return floatstr(v)
