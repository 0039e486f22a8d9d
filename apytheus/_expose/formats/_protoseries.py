"""A registered metric's series as protobuf ``Metric`` fields, with no samples built.

The protobuf format's fast path: what `_collect.build.build_family` would make
of the series (with ``openmetrics`` and ``every_sum``), encoded straight from
them into the messages `_protometric` makes of a `MetricFamily`'s samples.
A gauge whose function fails is logged and left out, as there.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ..._collect.build import function_value
from ..._names import UNDERSCORES
from ..._native import Layout, split
from ..._native import count as native_count
from ..._record.family import Family
from . import _protometric as pm
from ._protonative import native_fields
from ._protowire import V1, bound, field, varint

_gauge = struct.Struct("<3Bd").pack  # Metric.gauge: key, size, Gauge.value
# A usual counter's Metric.counter (key, size), Counter.value, created_timestamp (key,
# size), Timestamp.seconds and Timestamp.nanos' key, then nanos' first three bytes
_counter = struct.Struct("<3sd9s3B").pack

Chunk = Sequence[Any]  # series of one family (`apytheus.backends._series`)


def series_encoder(enc: pm.Encoder, family: Family, name: str) -> Callable[[Chunk], list[bytes]]:
    """What turns a chunk of ``family``'s series (exposed as ``name``) into Metric fields."""
    kind = family.kind
    if kind == "counter" or kind == "gauge":
        return partial(_scalars, enc, name, kind == "counter")
    if kind == "histogram":
        return partial(_histograms, enc, [bound(b) for b in family.bounds], family.native)
    if kind == "summary":
        return partial(_summaries, enc)
    if kind == "info":
        return partial(_infos, enc)
    if kind == "stateset":
        states = [enc.labels((name,), (state,)) for state in family.states]
        return partial(_statesets, enc, states)
    raise ValueError(f"a {kind} metric has no protobuf encoding")  # none is registered


def _scalars(enc: pm.Encoder, name: str, counter: bool, chunk: Chunk) -> list[bytes]:
    """Gauges, or counters: a usual one here, any other by `_protometric.counter`.

    A usual counter has no exemplar and a created time since 1978 (2**28 s): its
    Timestamp has five bytes of seconds and four or five of nanos. Series created
    within the same 2 ms (they come together) share all of their Metric but the
    labels, value and first three bytes of nanos: that part is made again only
    when it changes.
    """
    out: list[bytes] = []
    labels_of = enc.series_labels
    kept = enc.escaping == UNDERSCORES  # a series' encoded labels are kept on its label set
    second = -1.0
    high = -1  # nanos >> 21: the last byte of Timestamp.nanos
    before = after = rest = b""  # the shared parts, around the value and first bytes
    extra = 0x80  # the Metric's size but its labels (0x80: made the general way)
    for s in chunk:
        # ScalarSeries.value and Encoder.series_labels, inlined: two calls less per series
        value = float(sum(s.cells)) if s.function is None else function_value(s, name)
        if value is None:
            continue  # its function failed: left out
        labels = s.labels.encoded if kept else None
        if labels is None:
            labels = labels_of(s.labels)
        if not counter:
            n = len(labels) + 11
            if n < 0x80:
                out += (b"\x22", V1[n], labels, _gauge(0x12, 9, 9, value))
            else:
                out.append(pm.gauge(labels, value))
            continue
        t = s.created
        if 268435456.0 <= t < 34359738368.0 and s.exemplar is None:  # 2**28 to 2**35 s
            fraction = t % 1.0
            nanos = round(fraction * 1e9)
            if nanos >> 21 != high or t - fraction != second:
                second = t - fraction
                high = nanos >> 21
                rest = varint(high)
                size = 10 + len(rest)  # of the Timestamp
                before = bytes((0x1A, size + 11, 0x09))  # Metric.counter, Counter.value
                after = bytes((0x1A, size)) + b"\x08" + varint(int(second)) + b"\x10"
                # nanos under 2**21 has fewer bytes; 1e9 (rounded up) is clamped
                extra = size + 13 if 0 < high < 476 else 0x80
            n = len(labels) + extra
            if n < 0x80:
                low = nanos & 0x3FFF
                body = _counter(
                    before,
                    value,
                    after,
                    low & 0x7F | 0x80,
                    low >> 7 | 0x80,
                    nanos >> 14 & 0x7F | 0x80,
                )
                out += (b"\x22", V1[n], labels, body, rest)
                continue
        out.append(pm.counter(enc, labels, value, s.exemplar, t))
    return out


_EXEMPLARS = b"\x82\x01"  # Histogram.exemplars, field 16, length-delimited


def _histograms(
    enc: pm.Encoder, bounds: list[bytes], native: Layout | None, chunk: Chunk
) -> list[bytes]:
    out: list[bytes] = []
    bucket = pm.bucket
    for s in chunk:
        counts, total = s.snapshot()
        exemplars = s.exemplars
        buckets: list[bytes] = []
        cumulative = 0.0
        for i, upper in enumerate(bounds):
            cumulative += counts[i]
            buckets.append(bucket(enc, cumulative, upper, exemplars[i]))
        cumulative += counts[-1]
        inf = (cumulative, exemplars[-1])
        labels = enc.series_labels(s.labels)
        count = float(sum(counts))
        extra = b""
        if native is not None:
            natives = s.native_snapshot()
            count = native_count(natives)  # what the buckets hold: the two always agree
            extra = native_fields(split(natives, native))
            # Histogram.exemplars (field 16) carry a native histogram's exemplars; a
            # native-only one writes no classic +Inf bucket for its exemplar
            extra += b"".join(field(_EXEMPLARS, enc.exemplar(e)) for e in exemplars if e)
            if not bounds:
                inf = (cumulative, None)
        out.append(pm.histogram(enc, labels, buckets, inf, count, total, s.created, extra))
    return out


def _summaries(enc: pm.Encoder, chunk: Chunk) -> list[bytes]:
    out: list[bytes] = []
    for s in chunk:
        counts, total = s.snapshot()
        labels = enc.labels(s.labels.names, s.labels.values)
        out.append(pm.summary(enc, labels, (), float(sum(counts)), total, s.created))
    return out


def _infos(enc: pm.Encoder, chunk: Chunk) -> list[bytes]:
    out: list[bytes] = []
    for s in chunk:
        info = s.info  # (name, value) pairs, after the series' labels
        labels = enc.labels(s.labels.names, s.labels.values)
        labels += enc.labels([n for n, _ in info], [v for _, v in info])
        out.append(pm.gauge(labels, 1.0))
    return out


def _statesets(enc: pm.Encoder, states: list[bytes], chunk: Chunk) -> list[bytes]:
    out: list[bytes] = []
    for s in chunk:
        current = s.value()
        labels = enc.labels(s.labels.names, s.labels.values)
        for i, state in enumerate(states):
            out.append(pm.gauge(labels + state, 1.0 if i == current else 0.0))
    return out
