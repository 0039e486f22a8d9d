"""BASE: native (exponential) histogram buckets: the schema, a value's bucket, merging.

A native histogram of schema ``s`` has buckets whose bounds grow by
``base = 2**(2**-s)``: bucket ``i`` holds the values in ``(base**(i-1), base**i]``
(negative values mirrored, in buckets of their own), and a zero bucket holds
those within ``zero_threshold`` of 0. The index is computed as client_golang
does it: ``frexp`` of the value, then (for ``s > 0``) a bisection of the
fraction in a table of the ``2**s`` bounds in ``[0.5, 1)``. ±Inf land in the
bucket past the largest float's; NaN in no bucket (it counts in count only).

Buckets are kept in one dict per thread cell, keyed by `bucket_key`: the
positive bucket ``i`` as ``i``, the negative one as ``i + NEGATIVE``, the zero
bucket as ``ZERO``, NaN observations as ``NAN``. Indices stay far inside
``±2**30`` (schema 8 reaches about ``±2**18``), so the keys never meet.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from fractions import Fraction
from typing import Final, NamedTuple

MIN_SCHEMA: Final = -4
MAX_SCHEMA: Final = 8
NEGATIVE: Final = 1 << 32  # added to a negative bucket's index
ZERO: Final = 1 << 34  # the zero bucket's key
NAN: Final = 1 << 35  # NaN observations: in no bucket, but in the count (see `count`)
_SPLIT: Final = 1 << 31  # keys at or above (minus NEGATIVE) are negative buckets


def pick_schema(factor: float) -> int:
    """The coarsest schema in [-4, 8] whose growth ``2**(2**-schema)`` is at most ``factor``.

    As client_golang's ``pickSchema`` (1.1 gives 3, 2 gives 0, 1.01 gives 7), but
    decided exactly: ``log2(log2(factor))`` rounds wrong just below 16, 256 and 65536.
    A factor below schema 8's growth gets 8; an infinite one -4.
    """
    if not factor > 1:
        raise ValueError(f"native_bucket_factor must be above 1, got {factor!r}")
    if factor == math.inf:
        return MIN_SCHEMA
    exact = Fraction(factor)
    for schema in range(MIN_SCHEMA, MAX_SCHEMA):
        # growth <= factor, in integers: 2**(2**-s) <= f  <=>  2 <= f**(2**s)
        if (exact ** (1 << schema) >= 2) if schema >= 0 else exact >= 2 ** (1 << -schema):
            return schema
    return MAX_SCHEMA


@functools.cache
def bounds_table(schema: int) -> tuple[float, ...]:
    """The ``2**schema`` bucket bounds within ``[0.5, 1)`` of a schema above 0.

    Each is the largest float at or below the true bound ``2**(j / 2**schema) / 2``
    (decided exactly), so that bisecting a value's fraction finds the bucket the
    spec defines for every float: a bound rounded up would keep the float equal
    to it, which lies above the true bound, in the bucket below. (client_golang's
    table, built by repeated multiplication, is off by a few floats here and there.)
    """
    n = 1 << schema
    table = []
    for j in range(n):
        bound = math.ldexp(2.0 ** (j / n), -1)
        while not _at_most(bound, j, n):  # rounded up: step down
            bound = math.nextafter(bound, 0.0)
        while _at_most(above := math.nextafter(bound, 1.0), j, n):  # not the largest yet
            bound = above
        table.append(bound)
    return tuple(table)


def _at_most(x: float, j: int, n: int) -> bool:
    """Whether ``x <= 2**(j/n) / 2``, exactly: ``(2x)**n <= 2**j``."""
    return bool((2 * Fraction(x)) ** n <= 2**j)


class Layout(NamedTuple):
    """What a native histogram fixes at creation: its schema, zero bucket and bucket limit."""

    schema: int
    zero_threshold: float
    max_buckets: int
    table: tuple[float, ...]  # `bounds_table(schema)`, or () for a schema of 0 or less


class Fast(NamedTuple):
    """What the record path needs to find most values' bucket with one bisection.

    ``bounds`` are the upper bounds of the buckets between ``2**-32`` and ``2**32``
    (the first is bucket ``offset``'s); a positive value in ``(low, high]`` is in
    bucket ``bisect_left(bounds, value) + offset``, the same as `bucket_index`
    finds, since the bounds are the table's scaled by powers of two. Anything
    else (negative, zero-ish, huge, NaN) takes `bucket_key`.

    ``classic[k]`` is the classic bucket of every value that bisects to ``k``, or
    -1 where a classic bound lies inside that native bucket: a histogram that keeps
    its classic buckets then needs no second bisection for most values.
    """

    low: float
    high: float
    bounds: tuple[float, ...]
    offset: int
    layout: Layout
    classic: tuple[int, ...]


_FAST_RANGE: Final = 32  # the fast path's bounds span 2**-32 to 2**32


@functools.cache
def _fast_bounds(schema: int) -> tuple[tuple[float, ...], int]:
    if schema > 0:
        table, n = bounds_table(schema), 1 << schema
        first = -_FAST_RANGE * n  # bucket index of the bound 2**-32
        found = [math.ldexp(table[i % n], i // n + 1) for i in range(first, _FAST_RANGE * n + 1)]
        return tuple(found), first
    width = 1 << -schema  # powers of two per bucket
    first = -_FAST_RANGE // width
    return tuple(math.ldexp(1.0, i * width) for i in range(first, _FAST_RANGE // width + 1)), first


def fast(lay: Layout, classic_bounds: tuple[float, ...] = ()) -> Fast:
    """The record path's view of ``lay`` and the histogram's classic bounds (see `Fast`)."""
    bounds, offset = _fast_bounds(lay.schema)
    classic = [-1]  # k = 0: below `low`, never on the fast path
    for k in range(1, len(bounds)):
        below = bisect_right(classic_bounds, bounds[k - 1])  # bounds <= the bucket's start
        inside = bisect_left(classic_bounds, bounds[k]) > below  # one strictly inside
        classic.append(-1 if inside else below)
    classic.append(-1)  # past `high`: never on the fast path either
    low = max(bounds[0], lay.zero_threshold)
    return Fast(low, bounds[-1], bounds, offset, lay, tuple(classic))


def layout(factor: object, max_buckets: object, zero_threshold: object) -> Layout:
    """A checked `Layout` (clear errors for a factor ≤ 1, a limit < 1, a negative threshold)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)):
        raise TypeError(f"native_bucket_factor must be a number, not {type(factor).__name__}")
    if isinstance(factor, int) and factor > 2**1023:
        factor = math.inf  # more than a float holds: the coarsest schema, as for inf
    if isinstance(max_buckets, bool) or not isinstance(max_buckets, int) or max_buckets < 1:
        raise ValueError(f"native_max_buckets must be a whole number ≥ 1, got {max_buckets!r}")
    if isinstance(zero_threshold, bool) or not isinstance(zero_threshold, (int, float)):
        raise TypeError("native_zero_threshold must be a number")
    if not 0 <= zero_threshold < math.inf:
        raise ValueError(f"native_zero_threshold must be ≥ 0 and finite, got {zero_threshold!r}")
    schema = pick_schema(float(factor))
    table = bounds_table(schema) if schema > 0 else ()
    return Layout(schema, float(zero_threshold), max_buckets, table)


def bucket_key(value: float, lay: Layout) -> int | None:
    """The key of the bucket ``value`` lands in (see the module docstring); None for NaN."""
    if value != value:
        return None
    magnitude = abs(value)
    if magnitude <= lay.zero_threshold:
        return ZERO
    key = bucket_index(magnitude, lay.schema, lay.table)
    return key if value > 0 else key + NEGATIVE


def bucket_index(magnitude: float, schema: int, table: tuple[float, ...]) -> int:
    """The index of the bucket holding ``magnitude`` (> 0) at ``schema``."""
    inf = magnitude == math.inf
    frac, exp = math.frexp(1.7976931348623157e308 if inf else magnitude)
    if schema > 0:
        key = bisect_left(table, frac) + (exp - 1) * len(table)
    else:
        key = exp - 1 if frac == 0.5 else exp
        key = (key + (1 << -schema) - 1) >> -schema
    return key + 1 if inf else key


class Buckets(NamedTuple):
    """A native histogram's buckets as exposed: schema, zero bucket, and counts by index."""

    schema: int
    zero_threshold: float
    zero_count: float
    positive: dict[int, float]
    negative: dict[int, float]


def split(counts: Mapping[int, float], lay: Layout) -> Buckets:
    """Bucket counts by key as exposed, at a schema low enough for ``max_buckets``.

    More populated buckets than the limit lower the schema one step at a time,
    each merging neighbour pairs (index ``i`` goes to ``ceil(i / 2)``, as
    client_golang's ``doubleBucketWidth``), until they fit or the schema is -4.
    The result depends on the counts only: every worker and scrape agree.
    """
    positive: dict[int, float] = {}
    negative: dict[int, float] = {}
    zero = 0.0
    for key, count in counts.items():
        if not count:
            continue
        if key == NAN:
            continue
        if key == ZERO:
            zero += count
        elif key >= _SPLIT:
            negative[key - NEGATIVE] = count
        else:
            positive[key] = count
    schema = lay.schema
    while len(positive) + len(negative) > lay.max_buckets and schema > MIN_SCHEMA:
        positive, negative = _halve(positive), _halve(negative)
        schema -= 1
    return Buckets(schema, lay.zero_threshold, zero, positive, negative)


def count(counts: Mapping[int, float]) -> float:
    """A native histogram's count: what its buckets (and NaN observations) hold.

    Taken from the bucket counts alone, never from the classic cells read at
    another moment, so count and buckets always agree: Prometheus refuses a
    native histogram whose buckets hold more (or, from 2.49, other) than its
    count, and with it the whole scrape.
    """
    return float(sum(counts.values()))


def _halve(buckets: dict[int, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for i, count in buckets.items():
        j = -((-i) // 2)  # ceil(i / 2): (base**(i-1), base**i] lies in the wider bucket j
        out[j] = out.get(j, 0.0) + count
    return out


def spans(buckets: Mapping[int, float]) -> tuple[list[tuple[int, int]], list[float]]:
    """Spans (offset, length) and counts in index order, as the exposition formats want them.

    A gap of one or two empty buckets is written as zero counts inside a span
    (as client_golang does); a longer gap starts a new span.
    """
    offsets: list[int] = []
    lengths: list[int] = []
    counts: list[float] = []
    following = 0  # the index after the last bucket written
    start = 0  # where the current span's counts begin in `counts`
    for i in sorted(buckets):
        gap = i - following
        if not offsets or gap > 2:
            if offsets:
                lengths.append(len(counts) - start)
            offsets.append(gap)
            start = len(counts)
        elif gap:
            counts.extend((0.0,) * gap)
        counts.append(buckets[i])
        following = i + 1
    if offsets:
        lengths.append(len(counts) - start)
    return list(zip(offsets, lengths, strict=True)), counts
