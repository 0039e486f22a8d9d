"""What both text formats share: label braces, sample values, and names under an escaping."""

from __future__ import annotations

from ..._labels import escape_label_value, has_quoted_names
from ..._names import (
    ALLOW_UTF8,
    DOTS,
    escape_label_name,
    escape_metric_name,
    is_legacy_label_name,
    is_legacy_metric_name,
    quote,
)
from ..._samples import MetricFamily, Sample, floatstr


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


def plain(family: MetricFamily, escaping: str) -> bool:
    """Whether every name of ``family`` is written as it is (classic names, not ``dots``).

    Then a sample line is its name and its labels' rendered text, the fast path.
    """
    if escaping == DOTS or not is_legacy_metric_name(family.name):
        return False
    names: set[str] = set()
    for s in family.samples:
        if has_quoted_names(s.labels.text) or (
            s.extra is not None and not is_legacy_label_name(s.extra[0])
        ):
            return False
        names.add(s.name)
    return all(map(is_legacy_metric_name, names))


def series_text(sample: Sample, escaping: str) -> str:
    """A sample's name and labels under ``escaping`` (the slow path: see `plain`).

    Under ``allow-utf-8`` a name outside the classic set goes inside the braces,
    quoted, as the first item: ``{"my.metric",a="b"}``.
    """
    pairs = sample.labels.pairs
    if sample.extra is not None:
        pairs = (*pairs, sample.extra)
    labels = labels_text(pairs, escaping)
    if escaping == ALLOW_UTF8 and not is_legacy_metric_name(sample.name):
        return f"{{{quote(sample.name)},{labels}}}" if labels else f"{{{quote(sample.name)}}}"
    name = escape_metric_name(sample.name, escaping)
    return f"{name}{{{labels}}}" if labels else name


def labels_text(pairs: tuple[tuple[str, str], ...], escaping: str) -> str:
    """Label pairs as ``a="x",b="y"``, names under ``escaping``, values escaped."""
    return ",".join(f'{escape_label_name(k, escaping)}="{escape_label_value(v)}"' for k, v in pairs)
