"""The protobuf ``Metric`` of each type, and what one call encodes names and labels with.

Both ways into the protobuf format use these: `protobuf` (a custom
collector's `MetricFamily`, from its samples) and `_protoseries` (a registered
metric, straight from its series). An `Encoder` lives for one call: what it
keeps (label names and values, counts, Timestamp seconds) goes with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..._labels import LabelSet
from ..._names import ALLOW_UTF8, ESCAPINGS, UNDERSCORES, escape_label_name, escape_metric_name
from ..._samples import Exemplar
from ._protowire import INF_BOUND, NAN_SUM, UINT64_END, V1, field, pack_double, size, varint
from ._protowire import count as count_field
from ._protowire import timestamp as timestamp_message

# MetricType, by OpenMetrics type (any other is UNTYPED).
TYPES: Final = {
    "counter": 0,
    "gauge": 1,
    "info": 1,
    "stateset": 1,
    "summary": 2,
    "histogram": 4,
    "gaugehistogram": 5,
}
UNTYPED: Final = 3
GAUGE: Final = b"\x12\x09\x09"  # Metric.gauge, 9 bytes long: its Gauge.value, a double
UNTYPED_VALUE: Final = b"\x2a\x09\x09"  # Metric.untyped, 9 bytes long: Untyped.value
_VALUES_KEPT: Final = 1000  # values of one label name an Encoder remembers


def exposed_name(kind: str, name: str) -> str:
    """The protobuf family name (before escaping): the name Prometheus stores series under.

    A counter is ``<name>_total``, the name of its sample in the text formats
    (Prometheus takes the family name as the series name), an info ``<name>_info``.
    """
    if kind == "counter":
        return name + "_total"
    if kind == "info":
        return name + "_info"
    return name


class _Label:
    """A label name, escaped, as an Encoder writes its LabelPairs (see `Encoder.labels`)."""

    __slots__ = ("head", "starts", "values")

    def __init__(self, head: bytes) -> None:
        self.head = head  # LabelPair.name and the value's key
        # a LabelPair up to its value, by the value's length (while its size is one byte)
        self.starts: list[bytes | None] = [None] * (127 - len(head))
        # LabelPairs by value, until `_VALUES_KEPT` are kept: then None (the values vary)
        self.values: dict[str, bytes] | None = {}

    def start(self, n: int) -> bytes:
        """A LabelPair up to its value, for a value of ``n`` bytes."""
        value_size = size(n)
        start = b"\x0a" + size(len(self.head) + len(value_size) + n) + self.head + value_size
        if n < len(self.starts):
            self.starts[n] = start
        return start


class Encoder:
    """One call's escaping, with what it encoded so far: label names and values, counts, seconds."""

    __slots__ = ("escaping", "names", "counts", "seconds")

    def __init__(self, escaping: str) -> None:
        if escaping not in ESCAPINGS:
            raise ValueError(f"unknown escaping {escaping!r}: one of {', '.join(ESCAPINGS)}")
        self.escaping = escaping
        self.names: dict[str, _Label] = {}
        self.counts: dict[float, bytes] = {}
        self.seconds: dict[int, bytes] = {}

    def metric_name(self, name: str) -> bytes:
        """A metric name, escaped (as it is under ``allow-utf-8``)."""
        if self.escaping != ALLOW_UTF8:
            name = escape_metric_name(name, self.escaping)
        return name.encode()

    def header(self, name: str, documentation: str, kind: str, unit: str) -> bytes:
        """MetricFamily's name (exposed, not escaped yet), help, type and (if any) unit fields."""
        out = field(b"\x0a", self.metric_name(name))
        out += field(b"\x12", documentation.encode())
        out += b"\x18" + V1[TYPES.get(kind, UNTYPED)]
        if unit:
            out += field(b"\x2a", unit.encode())
        return out

    def label(self, name: str) -> _Label:
        """A label name, escaped, met for the first time."""
        escaped = name if self.escaping == ALLOW_UTF8 else escape_label_name(name, self.escaping)
        found = self.names[name] = _Label(field(b"\x0a", escaped.encode()) + b"\x12")
        return found

    def series_labels(self, labels: LabelSet) -> bytes:
        """A series' labels as Metric.label fields, kept on its `LabelSet` (underscores).

        Encoded once per series, like the text formats' label text: a scrape in
        protobuf then costs what one in text does (the other escapings, rare in
        protobuf, are encoded at every scrape).
        """
        if self.escaping != UNDERSCORES:
            return self.labels(labels.names, labels.values)
        found = labels.encoded
        if found is None:
            found = labels.encoded = self.labels(labels.names, labels.values)
        return found

    def labels(self, names: Sequence[str], values: Sequence[str]) -> bytes:
        """Labels (names and their values) as Metric.label (or Exemplar.label) fields.

        A LabelPair is its start (key, size, name, the value's key and size: the
        same for every value of one length) and the value's bytes. A name's
        pairs are kept by value, unless its values do not repeat.
        """
        out = b""
        known = self.names
        i = 0  # an index, not zip(): zip() costs more than the loop for one or two labels
        for name in names:
            value = values[i]
            i += 1
            label = known.get(name) or self.label(name)
            kept = label.values
            if kept is not None:
                found = kept.get(value)
                if found is not None:
                    out += found
                    continue
            raw = value.encode()
            n = len(raw)
            start = label.starts[n] if n < len(label.starts) else None
            found = (start or label.start(n)) + raw
            if kept is not None:
                if len(kept) < _VALUES_KEPT:
                    kept[value] = found
                else:
                    label.values = None
            out += found
        return out

    def count(self, value: float) -> bytes:
        """`_protowire.count`, remembered (bucket counts repeat from series to series)."""
        found = self.counts.get(value)
        if found is None:
            found = count_field(value)
            if value == value:  # a NaN is no key
                self.counts[value] = found
        return found

    def timestamp(self, t: float) -> bytes | None:
        """A Timestamp message (None for a time it cannot hold)."""
        return timestamp_message(t, self.seconds)

    def exemplar(self, ex: Exemplar) -> bytes:
        """An Exemplar message."""
        body = self.labels(ex.labels.names, ex.labels.values) + b"\x11" + pack_double(ex.value)
        ts = timestamp_message(ex.timestamp, self.seconds)
        if ts is not None:
            body += b"\x1a" + V1[len(ts)] + ts
        return body


def metric(labels: bytes, body: bytes) -> bytes:
    """A MetricFamily.metric field: labels and a (keyed, sized) value message."""
    n = len(labels) + len(body)
    return b"\x22" + (V1[n] if n < 0x80 else varint(n)) + labels + body


def gauge(labels: bytes, value: float, key: bytes = GAUGE) -> bytes:
    """A gauge (or, with `UNTYPED_VALUE`, untyped) Metric field."""
    n = len(labels) + 11
    return b"".join((b"\x22", V1[n] if n < 0x80 else varint(n), labels, key, pack_double(value)))


def counter(
    enc: Encoder, labels: bytes, value: float, exemplar: Exemplar | None, created: float | None
) -> bytes:
    """A counter Metric field: value, exemplar, created timestamp."""
    body = b"\x09" + pack_double(value)
    if exemplar is not None:
        body += field(b"\x12", enc.exemplar(exemplar))
    ts = None if created is None else enc.timestamp(created)
    if ts is not None:
        body += b"\x1a" + V1[len(ts)] + ts
    return metric(labels, field(b"\x1a", body))


def bucket(enc: Encoder, cumulative: float, bound: bytes, exemplar: Exemplar | None) -> bytes:
    """A Histogram.bucket field: cumulative count, upper bound (a `_protowire.bound`), exemplar."""
    c = enc.counts.get(cumulative) or enc.count(cumulative)
    if exemplar is None:
        return b"\x1a" + V1[len(c) + 9] + c + bound
    return field(b"\x1a", c + bound + field(b"\x1a", enc.exemplar(exemplar)))


def histogram(
    enc: Encoder,
    labels: bytes,
    buckets: list[bytes],
    inf: tuple[float, Exemplar | None] | None,
    count: float | None,
    total: float | None,
    created: float | None,
    native: bytes = b"",
) -> bytes:
    """A histogram Metric field, from its `bucket` fields but ``+Inf``'s (count, exemplar).

    ``native`` is a native histogram's fields (see ``_protonative``), if it is one.

    The ``+Inf`` bucket is written only when Prometheus could not make it from
    the count (client_golang leaves it out): with an exemplar, or a count of its
    own. A missing count is the ``+Inf`` bucket's; a missing sum is NaN (an
    absent one Prometheus would store as 0). Counts that are no uint64 go in
    the double fields.
    """
    if inf is not None:
        if count is None:
            count = inf[0]
        if inf[1] is not None or not inf[0] == count:
            buckets = [*buckets, bucket(enc, inf[0], INF_BOUND, inf[1])]
    head = b"" if count is None else enc.count(count)
    head += NAN_SUM if total is None else b"\x11" + pack_double(total)
    parts = [head, *buckets, native]
    if created is not None:
        ts = enc.timestamp(created)
        if ts is not None:
            parts.append(b"\x7a" + V1[len(ts)] + ts)
    return metric(labels, field(b"\x3a", b"".join(parts)))


def summary(
    enc: Encoder,
    labels: bytes,
    quantiles: Sequence[tuple[float, float]],
    count: float | None,
    total: float | None,
    created: float | None,
) -> bytes:
    """A summary Metric field: count (rounded: no double field), sum (NaN if none), quantiles."""
    parts: list[bytes] = []
    if count is not None and 0.0 <= count < UINT64_END:  # NaN: left out
        parts.append(b"\x08" + size(round(count)))
    parts.append(NAN_SUM if total is None else b"\x11" + pack_double(total))
    for quantile, value in quantiles:
        parts.append(b"\x1a\x12\x09" + pack_double(quantile) + b"\x11" + pack_double(value))
    if created is not None:
        ts = enc.timestamp(created)
        if ts is not None:
            parts.append(b"\x22" + V1[len(ts)] + ts)
    return metric(labels, field(b"\x22", b"".join(parts)))
