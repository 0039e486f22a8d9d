"""Protobuf wire primitives for the exposition encoder: varints, fields, doubles, Timestamps.

A field's key is ``field number << 3 | wire type``; the constants below are
keys and fixed fields of prometheus/client_model's ``metrics.proto``. Nothing
here is kept between calls: a caller passes its own memo where one helps.
"""

from __future__ import annotations

import math
import struct
from typing import Final

V1: Final = tuple(bytes((i,)) for i in range(128))  # the one-byte varints
pack_double: Final = struct.Struct("<d").pack
# Timestamp.nanos fields (key and varint) of a five- and a four-byte varint
_pack_nanos5: Final = struct.Struct("6B").pack
_pack_nanos4: Final = struct.Struct("5B").pack

INF_BOUND: Final = b"\x11" + pack_double(math.inf)  # Bucket.upper_bound +Inf
NAN_SUM: Final = b"\x11" + pack_double(math.nan)  # Histogram / Summary.sample_sum NaN
UINT64_END: Final = 18446744073709551616.0  # 2**64
_MAX_SECONDS: Final = 9.2e18  # a timestamp beyond an int64 of seconds (or NaN) is left out


def varint(n: int) -> bytes:
    """``n`` as a varint (a negative one as its 64-bit two's complement, ten bytes)."""
    if 0 <= n < 0x80:
        return V1[n]
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def size(n: int) -> bytes:
    """A length as a varint (one byte, the usual case, by lookup)."""
    return V1[n] if n < 0x80 else varint(n)


def field(key: bytes, payload: bytes) -> bytes:
    """A length-delimited field: key, length, payload."""
    n = len(payload)
    return key + (V1[n] if n < 0x80 else varint(n)) + payload


def count(value: float) -> bytes:
    """A count as uint64 field 1, or as double field 4 when it is no uint64.

    Histogram.sample_count / sample_count_float and Bucket.cumulative_count /
    cumulative_count_float share these numbers. Prometheus reads the double
    when it is not 0 (a count that is no uint64 never is).
    """
    if 0.0 <= value < UINT64_END and value == int(value):
        n = int(value)
        return b"\x08" + (V1[n] if n < 0x80 else varint(n))
    return b"\x21" + pack_double(value)


def bound(value: float) -> bytes:
    """A Bucket.upper_bound field (`INF_BOUND` for +Inf, so that it can be told by identity)."""
    return INF_BOUND if value == math.inf else b"\x11" + pack_double(value)


def timestamp(t: float, seconds: dict[int, bytes]) -> bytes | None:
    """A ``google.protobuf.Timestamp`` message for ``t`` seconds (None if there is none).

    Seconds are the floor, nanos the rounded rest clamped to [0, 999999999];
    fields at 0 are left out, as proto3 writes them. ``seconds`` is the caller's
    memo of Timestamp.seconds fields (series are created in bursts: many share one).
    """
    if 0.0 <= t < _MAX_SECONDS:
        whole = int(t)
    elif -_MAX_SECONDS < t < 0.0:
        whole = math.floor(t)
    else:  # NaN, infinite, or beyond an int64 of seconds
        return None
    nanos = round((t - whole) * 1e9)
    head = seconds.get(whole)
    if head is None:
        head = seconds[whole] = b"\x08" + varint(whole) if whole else b""
    if nanos >= 0x10000000:  # five bytes, the usual case
        if nanos > 999_999_999:
            nanos = 999_999_999
        low = nanos & 0x3FFF  # in two small ints: Python is faster with those
        high = nanos >> 14
        return head + _pack_nanos5(
            0x10,
            low & 0x7F | 0x80,
            low >> 7 | 0x80,
            high & 0x7F | 0x80,
            high >> 7 & 0x7F | 0x80,
            high >> 14,
        )
    if nanos >= 0x200000:
        low = nanos & 0x3FFF
        high = nanos >> 14
        return head + _pack_nanos4(
            0x10, low & 0x7F | 0x80, low >> 7 | 0x80, high & 0x7F | 0x80, high >> 7
        )
    if nanos > 0:
        return head + b"\x10" + varint(nanos)
    return head
