"""Protobuf fields of a native histogram: schema, zero bucket, spans and deltas.

As client_golang writes them (``Histogram`` fields 5 to 13): the schema and
zero threshold always, the zero bucket's count, then per sign the spans
(gaps of up to two empty buckets kept inside a span) and the count deltas
(each bucket's count minus the previous one's, zigzag ``sint64``, one field
each as proto2 writes a repeated field). A histogram with no observation, no
zero bucket width and no bucket gets a no-op span (offset 0, length 0), as
the spec asks, so that Prometheus still reads it as native.
"""

from __future__ import annotations

from ..._native import Buckets, spans
from ._protowire import field, pack_double, varint

_NO_OP_SPAN = b"\x62\x04\x08\x00\x10\x00"  # Histogram.positive_span {offset: 0, length: 0}
# a delta field (negative_delta 0x50, positive_delta 0x68) by its one-byte zigzag value
_SMALL = {key: [key + bytes((z,)) for z in range(0x80)] for key in (b"\x50", b"\x68")}


def _zigzag(n: int) -> bytes:
    return varint((n << 1) ^ (n >> 63))


def native_fields(buckets: Buckets) -> bytes:
    """The native part of a ``Histogram`` message for ``buckets``."""
    parts = [b"\x28" + _zigzag(buckets.schema), b"\x31" + pack_double(buckets.zero_threshold)]
    zero = buckets.zero_count
    if zero == int(zero) and zero >= 0:
        parts.append(b"\x38" + varint(int(zero)))
    else:
        parts.append(b"\x41" + pack_double(zero))  # zero_count_float
    written = False
    for counts, span_key, delta_key in (
        (buckets.negative, b"\x4a", b"\x50"),
        (buckets.positive, b"\x62", b"\x68"),
    ):
        if not counts:
            continue
        found, values = spans(counts)
        for offset, length in found:
            parts.append(field(span_key, b"\x08" + _zigzag(offset) + b"\x10" + varint(length)))
        previous = 0
        small = _SMALL[delta_key]
        for value in values:
            n = int(value)  # a count: a whole number, also as read back from Redis
            delta = n - previous
            zigzag = (delta << 1) ^ (delta >> 63)
            parts.append(small[zigzag] if zigzag < 0x80 else delta_key + varint(zigzag))
            previous = n
        written = True
    if not written and not zero and not buckets.zero_threshold:
        parts.append(_NO_OP_SPAN)
    return b"".join(parts)
