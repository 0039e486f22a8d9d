"""Native histogram bucket math (`apytheus._native`) against the spec and client_golang.

* An exact reference of the spec, independent of ``frexp`` and bound tables: bucket
  ``i`` of schema ``s`` holds ``(base**(i-1), base**i]`` with ``base = 2**(2**-s)``,
  decided with integers (``v**(2**s)`` against powers of two, ``v`` as ``odd * 2**exp``).
  `bucket_key` is checked against it at every schema on powers of two and their
  neighbours, the floats either side of each bucket bound, subnormals, the largest
  float, random bit patterns, negative values, ±Inf, NaN and the zero bucket.
* client_golang's own expectations, ported from ``prometheus/histogram_test.go``
  (``TestNativeHistogram``, ``TestGetLe``) and Prometheus' ``model/histogram``
  (``TestReduceResolutionFloatHistogram``), observed through `bucket_key` → `split`
  → `spans`.
* `pick_schema` against the exact definition, `layout`'s checks, `bounds_table`
  against client_golang's literal ``nativeHistogramBounds``, and `split`'s merging.

"""

from __future__ import annotations

import math
import random
import struct
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import pytest

from apytheus._native import (
    MAX_SCHEMA,
    MIN_SCHEMA,
    NEGATIVE,
    ZERO,
    Buckets,
    Layout,
    bounds_table,
    bucket_index,
    bucket_key,
    layout,
    pick_schema,
    spans,
    split,
)

MAX = sys.float_info.max
TINY = 5e-324  # the smallest subnormal, 2**-1074
INF = math.inf
GO_ZERO_THRESHOLD = 2.0**-128  # client_golang's DefNativeHistogramZeroThreshold
UNLIMITED = 1 << 30  # client_golang's NativeHistogramMaxBucketNumber 0: no limit
SCHEMAS = list(range(MIN_SCHEMA, MAX_SCHEMA + 1))


def up(x: float) -> float:
    return math.nextafter(x, INF)


def down(x: float) -> float:
    return math.nextafter(x, -INF)


# --- the exact reference -------------------------------------------------------------------


def ref_index(v: float, schema: int) -> int:
    """The spec's bucket of ``|v|`` (finite, not 0): ``i`` with ``base**(i-1) < |v| <= base**i``.

    Exact: ``|v| = odd * 2**exp``. For ``schema >= 0`` (``n = 2**schema``) the bucket is
    the smallest ``i`` with ``|v|**n <= 2**i``; ``odd**n`` is a power of two only for
    ``odd == 1``, else ``2**(b-1) < odd**n < 2**b`` with ``b`` its bit length. For
    ``schema < 0`` the bounds are ``2**(i * 2**-schema)``: schema 0's bucket, divided
    by ``2**-schema`` rounding up.
    """
    num, den = abs(v).as_integer_ratio()
    zeros = (num & -num).bit_length() - 1
    odd, exp = num >> zeros, zeros - (den.bit_length() - 1)
    if schema >= 0:
        n = 1 << schema
        return n * exp + ((odd**n).bit_length() if odd > 1 else 0)
    return -(-(exp + (odd.bit_length() if odd > 1 else 0)) // (1 << -schema))


def ref_key(v: float, schema: int, zero_threshold: float) -> int | None:
    """The spec's `bucket_key`: None for NaN, ZERO within the threshold, ±Inf past MAX's bucket."""
    if math.isnan(v):
        return None
    if abs(v) <= zero_threshold:
        return ZERO
    i = ref_index(MAX, schema) + 1 if math.isinf(v) else ref_index(v, schema)
    return i if v > 0 else i + NEGATIVE


def bound_straddle(i: int, schema: int) -> tuple[float, float] | None:
    """The floats either side of the bound ``base**i``: the largest in bucket ``i``, the next.

    Found with the reference only (the guess just starts the search); None when the
    bound lies below the smallest subnormal.
    """
    exponent = i / (1 << schema) if schema >= 0 else i * (1 << -schema)
    x = max(2.0**exponent, TINY)
    while x > TINY and ref_index(x, schema) > i:
        x = down(x)
    if ref_index(x, schema) > i:
        return None
    while ref_index(up(x), schema) <= i:
        x = up(x)
    return x, up(x)


def bound_indices(schema: int) -> Iterator[int]:
    """Bucket bounds to probe: every bound of a few binades (subnormal, around 1, the top)."""
    if schema <= 0:  # the bounds are powers of two: all of them
        w = 1 << -schema
        yield from range(-(1074 // w), -(-1024 // w))
        return
    n = 1 << schema
    for binade in (-1073, -1063, -1022, -1, 0, 1, 52, 1023):
        yield from range(binade * n, (binade + 1) * n)


def lay_for(schema: int, max_buckets: int = UNLIMITED, zero_threshold: float = 0.0) -> Layout:
    """A `layout` of ``schema`` (a factor a little above its growth)."""
    lay = layout(2.0 ** (2.0**-schema) * (1 + 2**-20), max_buckets, zero_threshold)
    assert lay.schema == schema
    return lay


def straddles(schema: int) -> list[tuple[int, float, float]]:
    found = []
    for i in bound_indices(schema):
        pair = bound_straddle(i, schema)
        if pair is not None and pair[1] < INF:
            found.append((i, *pair))
    return found


STRADDLES = {schema: straddles(schema) for schema in SCHEMAS}


def random_floats(seed: int, count: int) -> list[float]:
    """Positive finite floats from uniformly random bit patterns (every magnitude alike)."""
    rng = random.Random(seed)
    found: list[float] = []
    while len(found) < count:
        (v,) = struct.unpack("<d", rng.getrandbits(63).to_bytes(8, "little"))
        if 0 < v < INF:
            found.append(v)
    return found


def sample_values(schema: int) -> list[float]:
    """Positive values to check ``schema`` on (not the floats just above a bound: see below)."""
    values = [TINY, 2 * TINY, 3 * TINY, 2.0**-1022, down(2.0**-1022), up(2.0**-1022)]
    values += [MAX, down(MAX), 1.0, 0.1, 1 / 3, 1.1, 1.2, 1.4, 1.8, 3.0, math.pi, 1e-300, 1e300]
    values += [math.ldexp(1.0, e) for e in range(-1074, 1024)]
    for e in range(-1074, 1024, 7):
        values += [down(math.ldexp(1.0, e)), up(math.ldexp(1.0, e))]
    values += random_floats(seed=1000 + schema, count=1500)
    for _, below, above in STRADDLES[schema]:
        values += [below, down(below), up(above)]  # `above` itself: `test_..._just_above_a_bound`
    return values


def mismatches(values: Sequence[float], lay: Layout) -> list[tuple[float, int | None, int | None]]:
    """``(value, expected, got)`` wherever `bucket_key` differs from the reference."""
    return [
        (v, want, got)
        for v in values
        if (want := ref_key(v, lay.schema, lay.zero_threshold)) != (got := bucket_key(v, lay))
    ]


# --- 1. bucket_key against the exact reference ---------------------------------------------


@pytest.mark.parametrize("schema", SCHEMAS)
def test_bucket_key_matches_the_exact_definition(schema: int) -> None:
    lay = lay_for(schema)
    values = sample_values(schema)
    assert mismatches(values, lay) == []
    assert mismatches([-v for v in values], lay) == []


def test_the_reference_itself() -> None:
    """Spot checks of the reference against hand-computed buckets."""
    assert ref_index(1.0, 3) == 0 and ref_index(up(1.0), 3) == 1 and ref_index(2.0, 3) == 8
    assert ref_index(0.5, 0) == -1 and ref_index(up(0.5), 0) == 0 and ref_index(3.0, 0) == 2
    assert ref_index(4.0, -1) == 1 and ref_index(up(4.0), -1) == 2 and ref_index(0.25, -1) == -1
    assert ref_index(65536.0, -4) == 1 and ref_index(up(65536.0), -4) == 2
    assert ref_index(TINY, 8) == -1074 * 256 and ref_index(MAX, 8) == 1024 * 256
    assert ref_index(MAX, -4) == 64 and ref_index(TINY, -4) == -67  # ceil(-1074 / 16)
    # 2**0.5 lies strictly between the float sqrt(0.5) rounds to and the one before it
    assert ref_index(math.sqrt(2), 1) == 2 and ref_index(down(math.sqrt(2)), 1) == 1
    assert STRADDLES[1][0][0] == -1073 * 2  # every schema probes some bounds
    assert all(len(STRADDLES[s]) >= 16 for s in SCHEMAS)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_bucket_key_of_the_float_just_above_a_bound(schema: int) -> None:
    """The smallest float above each bound ``base**i`` is in bucket ``i + 1``."""
    lay = lay_for(schema)
    above = [a for _, _, a in STRADDLES[schema]]
    assert mismatches(above, lay) == []
    assert mismatches([-a for a in above], lay) == []


def test_bucket_key_of_sqrt_2() -> None:
    """The smallest case of the rule above: float(sqrt(2)) lies above the true bound."""
    lay = layout(1.5, UNLIMITED, 0.0)
    assert lay.schema == 1
    assert bucket_key(math.sqrt(2), lay) == 2
    assert bucket_key(-math.sqrt(2), lay) == 2 + NEGATIVE


@pytest.mark.parametrize("schema", SCHEMAS)
def test_extremes(schema: int) -> None:
    lay = lay_for(schema)
    top = ref_index(MAX, schema)
    assert top == (1024 << schema if schema >= 0 else 1024 >> -schema)
    assert bucket_key(MAX, lay) == top
    assert bucket_key(INF, lay) == top + 1  # client_golang: the bucket after MAX's
    assert bucket_key(-INF, lay) == top + 1 + NEGATIVE
    assert bucket_key(-MAX, lay) == top + NEGATIVE
    assert bucket_key(TINY, lay) == ref_index(TINY, schema)
    assert bucket_key(-TINY, lay) == ref_index(TINY, schema) + NEGATIVE
    assert bucket_key(math.nan, lay) is None
    assert bucket_key(-math.nan, lay) is None
    assert bucket_key(0.0, lay) == ZERO and bucket_key(-0.0, lay) == ZERO
    for v in (TINY, 1.0, MAX, INF):
        assert bucket_index(v, schema, lay.table) == bucket_key(v, lay)


@pytest.mark.parametrize("threshold", [0.0, TINY, GO_ZERO_THRESHOLD, 1e-9, 1.0, 1.4, 1e300])
@pytest.mark.parametrize("schema", [-4, -1, 0, 1, 3, 8])
def test_zero_bucket(threshold: float, schema: int) -> None:
    lay = lay_for(schema, zero_threshold=threshold)
    assert lay.zero_threshold == threshold
    inside = [0.0, -0.0, threshold, -threshold]
    if threshold:
        inside += [down(threshold), -down(threshold), threshold / 2]
    outside = [up(threshold), up(up(threshold)), 2 * up(threshold), MAX, INF]
    for v in inside:
        assert bucket_key(v, lay) == ZERO, v
    for v in outside + [-v for v in outside]:
        assert bucket_key(v, lay) == ref_key(v, schema, threshold) != ZERO, v
    assert bucket_key(math.nan, lay) is None


def test_keys_never_meet() -> None:
    """The lowest and highest positive, negative and zero keys stay apart at every schema."""
    for schema in SCHEMAS:
        lay = lay_for(schema)
        positive = {bucket_key(TINY, lay), bucket_key(INF, lay)}
        negative = {bucket_key(-TINY, lay), bucket_key(-INF, lay)}
        assert max(k for k in positive if k is not None) < min(k for k in negative if k is not None)
        assert max(k for k in negative if k is not None) < ZERO
        counts = {k: 1.0 for k in positive | negative if k is not None}
        buckets = split(counts, lay)
        assert set(buckets.positive) == {ref_index(TINY, schema), ref_index(MAX, schema) + 1}
        assert set(buckets.negative) == set(buckets.positive)


# --- 2. client_golang's expectations -------------------------------------------------------


class GoCase(NamedTuple):
    """A scenario of client_golang's TestNativeHistogram (the native part of ``want``)."""

    observations: tuple[float, ...]
    factor: float
    zero_threshold: float  # client_golang's 0 means its default, 2**-128
    max_buckets: int  # 0: no limit
    schema: int
    zero_count: int
    negative_spans: tuple[tuple[int, int], ...] = ()
    negative_deltas: tuple[int, ...] = ()
    positive_spans: tuple[tuple[int, int], ...] = ()
    positive_deltas: tuple[int, ...] = ()


_G = GO_ZERO_THRESHOLD
_UP_TO_2 = (0.0, 1.0, 1.2, 1.4, 1.8, 2.0)
_PAST_2 = (0.0, 1.0, 1.1, 1.2, 1.4, 1.8, 2.0, 3.0)
_MIXED = (0.0, -1.0, -1.2, -1.4, -1.8, -2.0, 1.0, 1.2, 1.4, 1.8, 2.0)
_WIDE = (0.0156251, 0.0625, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 3.5, 5.0, 6.0, 7.0, 33.33)
_FIVE = ((0, 5),)
_SCHEMA_2_DELTAS = (1, -1, 2, -2, 2)
_HALVED_DELTAS = (1, 2, -1, -2, 1)

# client_golang prometheus/histogram_test.go, TestNativeHistogram. Not ported: "no sparse
# buckets" (factor 1 turns native histograms off there; `layout` rejects it, see below),
# the four "buckets limited by widening the zero bucket[ twice][, negative observations]"
# (apytheus never widens the zero bucket: it only lowers the schema), and the four
# "buckets limited by reset[, negative observations]" / "... then reset" ones
# (NativeHistogramMinResetDuration: time-based resets apytheus does not do).
# client_golang halves the resolution once per observation that exceeds the limit, `split`
# as often as needed at once: the same result whenever client_golang ends within the limit.
GO_CASES = {
    "no observations": GoCase((), 1.1, _G, 0, 3, 0),
    # client_golang writes a no-op span {0, 0} for this one; that is the encoder's part
    # (apytheus/_expose/formats/_protonative.py), split/spans find no bucket
    "no observations and zero threshold of zero resulting in no-op span": GoCase(
        (), 1.1, 0.0, 0, 3, 0
    ),
    "factor 1.1 results in schema 3": GoCase(
        (0.0, 1.0, 2.0, 3.0), 1.1, _G, 0, 3, 1, (), (), ((0, 1), (7, 1), (4, 1)), (1, 0, 0)
    ),
    "factor 1.2 results in schema 2": GoCase(
        _UP_TO_2, 1.2, _G, 0, 2, 1, (), (), _FIVE, _SCHEMA_2_DELTAS
    ),
    "factor 4 results in schema -1": GoCase(
        _WIDE, 4, _G, 0, -1, 0, (), (), ((-2, 6),), (2, 0, 0, 2, -1, -2)
    ),
    "factor 17 results in schema -2": GoCase(
        _WIDE, 17, _G, 0, -2, 0, (), (), ((-1, 4),), (2, 2, 3, -6)
    ),
    "negative buckets": GoCase(
        tuple(-v for v in _UP_TO_2), 1.2, _G, 0, 2, 1, _FIVE, _SCHEMA_2_DELTAS
    ),
    "negative and positive buckets": GoCase(
        _MIXED, 1.2, _G, 0, 2, 1, _FIVE, _SCHEMA_2_DELTAS, _FIVE, _SCHEMA_2_DELTAS
    ),
    "wide zero bucket": GoCase(_MIXED, 1.2, 1.4, 0, 2, 7, ((4, 1),), (2,), ((4, 1),), (2,)),
    "NaN observation": GoCase(
        (*_UP_TO_2, math.nan), 1.2, _G, 0, 2, 1, (), (), _FIVE, _SCHEMA_2_DELTAS
    ),
    "+Inf observation": GoCase(
        (*_UP_TO_2, INF), 1.2, _G, 0, 2, 1, (), (), ((0, 5), (4092, 1)), (*_SCHEMA_2_DELTAS, -1)
    ),
    "-Inf observation": GoCase(
        (*_UP_TO_2, -INF), 1.2, _G, 0, 2, 1, ((4097, 1),), (1,), _FIVE, _SCHEMA_2_DELTAS
    ),
    "limited buckets but nothing triggered": GoCase(
        _UP_TO_2, 1.2, _G, 4, 2, 1, (), (), _FIVE, _SCHEMA_2_DELTAS
    ),
    "buckets limited by halving resolution": GoCase(
        _PAST_2, 1.2, _G, 4, 1, 1, (), (), _FIVE, _HALVED_DELTAS
    ),
    "limited buckets but nothing triggered, negative observations": GoCase(
        tuple(-v for v in _UP_TO_2), 1.2, _G, 4, 2, 1, _FIVE, _SCHEMA_2_DELTAS
    ),
    "buckets limited by halving resolution, negative observations": GoCase(
        tuple(-v for v in _PAST_2), 1.2, _G, 4, 1, 1, _FIVE, _HALVED_DELTAS
    ),
}


def observe(values: Sequence[float], lay: Layout) -> Buckets:
    """What a histogram of ``lay`` exposes after observing ``values``."""
    counts: dict[int, float] = {}
    for v in values:
        key = bucket_key(v, lay)
        if key is not None:
            counts[key] = counts.get(key, 0.0) + 1
    return split(counts, lay)


def spans_and_deltas(
    buckets: dict[int, float],
) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    found, counts = spans(buckets)
    whole = [int(c) for c in counts]
    assert whole == counts
    return tuple(found), tuple(c - p for p, c in zip([0, *whole], whole, strict=False))


@pytest.mark.parametrize("case", GO_CASES.values(), ids=GO_CASES.keys())
def test_client_golang_native_histogram(case: GoCase) -> None:
    lay = layout(case.factor, case.max_buckets or UNLIMITED, case.zero_threshold)
    got = observe(case.observations, lay)
    assert (got.schema, got.zero_threshold, got.zero_count) == (
        case.schema,
        case.zero_threshold,
        case.zero_count,
    )
    assert spans_and_deltas(got.negative) == (case.negative_spans, case.negative_deltas)
    assert spans_and_deltas(got.positive) == (case.positive_spans, case.positive_deltas)


# client_golang prometheus/histogram_test.go TestGetLe (the same table as Prometheus'
# model/histogram TestGetBoundExponential): the upper bound ("le") of bucket ``key``.
GO_GET_LE = [
    (-1, -1, 0.25),
    (0, -1, 1.0),
    (1, -1, 4.0),
    (512, -1, MAX),
    (513, -1, INF),
    (-1, 0, 0.5),
    (0, 0, 1.0),
    (1, 0, 2.0),
    (1024, 0, MAX),
    (1025, 0, INF),
    (-1, 2, 0.8408964152537144),
    (0, 2, 1.0),
    (1, 2, 1.189207115002721),
    (4096, 2, MAX),
    (4097, 2, INF),
]


@pytest.mark.parametrize(("key", "schema", "le"), GO_GET_LE)
def test_client_golang_get_le_is_in_its_bucket(key: int, schema: int, le: float) -> None:
    lay = lay_for(schema)
    assert le == INF or ref_index(le, schema) == key  # client_golang agrees with the spec here
    assert bucket_key(le, lay) == key
    assert bucket_key(-le, lay) == key + NEGATIVE


@pytest.mark.parametrize(("key", "schema", "le"), [case for case in GO_GET_LE if case[2] < INF])
def test_client_golang_get_le_next_float(key: int, schema: int, le: float) -> None:
    """The float after an le is in the next bucket, but for one le below the spec's bound.

    client_golang's le of bucket -1 at schema 2, 0.8408964152537144 (its table's
    entry), is one float below the spec's last float of that bucket: 0.8408964152537145
    ``**4 <= 1/2``. client_golang counts that float in bucket 0, the spec in -1.
    """
    lay = lay_for(schema)
    want = key if (key, schema) == (-1, 2) else key + 1
    assert ref_key(up(le), schema, 0.0) == want
    assert bucket_key(up(le), lay) == want


def test_prometheus_reduce_resolution() -> None:
    """Prometheus model/histogram TestReduceResolutionFloatHistogram: schema 0 → -1.

    Spans {0, 4}, {0, 0}, {3, 2} with counts 1, 3, 1, 2, 1, 1 become buckets 0, 1, 2, 4
    with 1, 4, 2, 2 (Prometheus writes them as spans {0, 3}, {1, 1}; `spans` keeps a
    gap of one inside the span, as client_golang's makeBuckets does).
    """
    counts = {0: 1.0, 1: 3.0, 2: 1.0, 3: 2.0, 7: 1.0, 8: 1.0}
    got = split(counts, lay_for(0, max_buckets=5))
    assert (got.schema, got.positive) == (-1, {0: 1.0, 1: 4.0, 2: 2.0, 4: 2.0})
    assert spans(got.positive) == ([(0, 5)], [1.0, 4.0, 2.0, 0.0, 2.0])


def test_spans() -> None:
    assert spans({}) == ([], [])
    assert spans({0: 1.0}) == ([(0, 1)], [1.0])
    assert spans({-5: 1.0, -4: 2.0}) == ([(-5, 2)], [1.0, 2.0])
    assert spans({3: 1.0, 5: 2.0}) == ([(3, 3)], [1.0, 0.0, 2.0])  # a gap of 1: in the span
    assert spans({3: 1.0, 6: 2.0}) == ([(3, 4)], [1.0, 0.0, 0.0, 2.0])  # of 2: too
    assert spans({3: 1.0, 7: 2.0}) == ([(3, 1), (3, 1)], [1.0, 2.0])  # of 3: a new span
    assert spans({9: 1.0, -2: 1.0, -1: 4.0}) == ([(-2, 2), (9, 1)], [1.0, 4.0, 1.0])


# --- 3. pick_schema and layout -------------------------------------------------------------


@pytest.mark.parametrize(
    ("factor", "schema"),
    [
        (1.1, 3),
        (2, 0),
        (2.0, 0),
        (1.01, 7),
        (1.2, 2),  # client_golang's TestNativeHistogram
        (4, -1),
        (17, -2),
        (1.5, 1),
        (3.9, 0),
        (65536, -4),
        (1e6, -4),
        (1e300, -4),
        (MAX, -4),
        (up(1.0), 8),  # below 2**(2**-8): still 8, as client_golang
        (1.001, 8),
        (1.0027, 8),
        (2**0.25, 3),  # the float is below 2**(1/4): schema 2's growth is too big for it
        (2**0.5, 1),  # this one is above 2**(1/2)
    ],
)
def test_pick_schema(factor: float, schema: int) -> None:
    assert pick_schema(factor) == schema == ref_schema(factor)
    assert layout(factor, 10, 0.0).schema == schema


def grows_at_most(schema: int, factor: float) -> bool:
    """``2**(2**-schema) <= factor``, exactly."""
    num, den = factor.as_integer_ratio()
    if schema >= 0:  # factor**(2**schema) >= 2
        return bool(num ** (1 << schema) >= 2 * den ** (1 << schema))
    return num >= den << (1 << -schema)  # 2**(2**-schema) is a power of two


def ref_schema(factor: float) -> int:
    """The coarsest schema whose growth ``2**(2**-n)`` is at most ``factor`` (else 8), exactly."""
    return next((n for n in range(MIN_SCHEMA, MAX_SCHEMA) if grows_at_most(n, factor)), MAX_SCHEMA)


def smallest_factor_of(schema: int) -> float:
    """The smallest float at least ``2**(2**-schema)`` (the float of it rounds either way)."""
    f = float(2.0 ** (2.0**-schema))
    while grows_at_most(schema, down(f)):
        f = down(f)
    while not grows_at_most(schema, f):
        f = up(f)
    return f


@pytest.mark.parametrize("schema", SCHEMAS)
def test_pick_schema_at_each_growth(schema: int) -> None:
    f = smallest_factor_of(schema)
    if schema <= 0:
        assert f == 2 ** (1 << -schema)  # exactly representable
    assert pick_schema(f) == schema
    assert pick_schema(up(f)) == schema
    assert pick_schema(2.0 ** (2.0**-schema)) == ref_schema(2.0 ** (2.0**-schema))


@pytest.mark.parametrize("schema", SCHEMAS)
def test_pick_schema_just_below_each_growth(schema: int) -> None:
    """A factor just below a schema's growth gets the next finer schema (8 stays 8)."""
    assert pick_schema(down(smallest_factor_of(schema))) == min(schema + 1, MAX_SCHEMA)


def test_pick_schema_random_factors() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        factor = 2.0 ** rng.uniform(0, 17)
        if factor > 1:
            assert pick_schema(factor) == ref_schema(factor), factor


@pytest.mark.parametrize(
    "factor", [pytest.param(INF, id="inf"), pytest.param(10**400, id="10**400")]
)
def test_layout_of_an_infinite_factor(factor: float) -> None:
    try:
        lay = layout(factor, 10, 0.0)
    except ValueError:
        return
    assert lay.schema == MIN_SCHEMA


def test_layout() -> None:
    lay = layout(1.1, 160, GO_ZERO_THRESHOLD)
    assert lay == Layout(3, GO_ZERO_THRESHOLD, 160, bounds_table(3))
    assert layout(2, 1, 0).table == () and layout(2, 1, 0).zero_threshold == 0.0
    assert type(layout(2, 1, 0).zero_threshold) is float
    assert layout(65536, 1, 1).schema == -4


@pytest.mark.parametrize(
    ("factor", "error"),
    [
        (1, ValueError),
        (1.0, ValueError),
        (0.5, ValueError),
        (0, ValueError),
        (-2.0, ValueError),
        (-INF, ValueError),
        (math.nan, ValueError),
        (True, TypeError),
        (False, TypeError),
        ("1.1", TypeError),
        (None, TypeError),
        ([1.1], TypeError),
    ],
)
def test_layout_rejects_factor(factor: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="native_bucket_factor"):
        layout(factor, 10, 0.0)


@pytest.mark.parametrize("max_buckets", [0, -1, 1.5, 4.0, True, False, "4", None])
def test_layout_rejects_max_buckets(max_buckets: object) -> None:
    with pytest.raises(ValueError, match="native_max_buckets"):
        layout(1.1, max_buckets, 0.0)


@pytest.mark.parametrize(
    ("threshold", "error"),
    [
        (-1e-9, ValueError),
        (-TINY, ValueError),
        (-1, ValueError),
        (math.nan, ValueError),
        (INF, ValueError),
        (-INF, ValueError),
        (True, TypeError),
        ("0", TypeError),
        (None, TypeError),
    ],
)
def test_layout_rejects_zero_threshold(threshold: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="native_zero_threshold"):
        layout(1.1, 10, threshold)


# --- 4. bounds_table against client_golang's nativeHistogramBounds -------------------------

# Copied from client_golang prometheus/histogram.go nativeHistogramBounds (identical to
# Prometheus' model/histogram exponentialBounds): schemas 1 to 3 whole, and entries of 4
# to 8, among them some of those furthest from the true value (index: literal).
GO_BOUNDS: dict[int, dict[int, float]] = {
    1: {0: 0.5, 1: 0.7071067811865475},
    2: {0: 0.5, 1: 0.5946035575013605, 2: 0.7071067811865475, 3: 0.8408964152537144},
    3: {
        0: 0.5,
        1: 0.5452538663326288,
        2: 0.5946035575013605,
        3: 0.6484197773255048,
        4: 0.7071067811865475,
        5: 0.7711054127039704,
        6: 0.8408964152537144,
        7: 0.9170040432046711,
    },
    4: {1: 0.5221368912137069, 9: 0.7384130729697496, 13: 0.8781260801866495},
    5: {1: 0.5109485743270583, 19: 0.7545822137967112, 27: 0.8973545375015533},
    6: {1: 0.5054446430258502, 55: 0.9071260877501991, 63: 0.9892280131939752},
    7: {1: 0.5027149505564014, 109: 0.9022270839033115, 125: 0.9838856116165875},
    8: {
        1: 0.5013556375251013,
        53: 0.5771552102951081,
        101: 0.6572577939746774,
        219: 0.9046732696855155,
        255: 0.9972960560854698,
    },
}


def floats_past_the_bound(x: float, j: int, schema: int) -> int:
    """Where ``x`` stands against the bound ``2**(j / 2**schema) / 2``, decided exactly.

    0 when ``x`` is the largest float at most the bound (the last of the bucket below:
    what a table searched with ``bisect_left`` needs), ``k`` when ``x`` is ``k`` floats
    above that one, ``-k`` when ``k`` floats below it.
    """
    i = j - (1 << schema)  # the bound is base**i
    steps, y = 0, x
    if ref_index(x, schema) <= i:
        while ref_index(up(y), schema) <= i:
            y, steps = up(y), steps - 1
            assert steps > -16, (x, j, schema)
    else:
        while ref_index(y, schema) > i:
            y, steps = down(y), steps + 1
            assert steps < 16, (x, j, schema)
    return steps


@pytest.mark.parametrize("schema", range(1, MAX_SCHEMA + 1))
def test_bounds_table(schema: int) -> None:
    table = bounds_table(schema)
    assert len(table) == 1 << schema and table[0] == 0.5
    assert all(a < b for a, b in zip(table, table[1:], strict=False)) and table[-1] < 1
    assert table[::2] == (bounds_table(schema - 1) if schema > 1 else (0.5,))  # nested
    # each entry the float just below or just above 2**(j / 2**schema) / 2
    past = {j: floats_past_the_bound(x, j, schema) for j, x in enumerate(table)}
    assert {j: k for j, k in past.items() if k not in (0, 1)} == {}


@pytest.mark.parametrize("schema", sorted(GO_BOUNDS))
def test_bounds_table_differs_from_client_golang_only_where_go_is_off(schema: int) -> None:
    """Where our entry differs from client_golang's literal, ours is the exact one.

    client_golang builds its table by repeated multiplication: some literals are a
    few floats off the largest float at or below the true bound (which ours is).
    """
    table = bounds_table(schema)
    for j, go in GO_BOUNDS[schema].items():
        assert floats_past_the_bound(table[j], j, schema) == 0
        if table[j] != go:
            assert floats_past_the_bound(go, j, schema) != 0, (schema, j)


def test_client_golang_bounds_against_the_true_values() -> None:
    """Where client_golang's literals stand: neither correctly rounded nor always below.

    With ``bisect_left`` (as client_golang searches), the floats between a literal and
    the true bound land in the wrong bucket: the ``k`` floats above a literal ``k``
    below the last float of the lower bucket go up a bucket, a literal above it keeps
    itself in the lower one.
    """
    past = {
        (s, j): floats_past_the_bound(x, j, s)
        for s, entries in GO_BOUNDS.items()
        for j, x in entries.items()
    }
    assert past[1, 1] == past[2, 2] == past[3, 4] == 0  # 0.7071067811865475 < 2**-0.5
    assert past[2, 3] == past[3, 6] == -1  # 0.8408964152537144: 1 float too low
    assert past[3, 1] == 1  # 0.5452538663326288 > 2**(1/8) / 2 (so is bounds_table's)
    assert past[7, 109] == past[7, 125] == past[8, 219] == past[8, 255] == -3
    assert past[8, 53] == past[8, 101] == 1  # above the true bound
    assert past[5, 27] == -3 and past[6, 55] == past[6, 63] == -2
    assert all(past[s, 0] == 0 for s in range(1, 4))  # 0.5 itself: exact


# --- 5. split: merging and the bucket limit ------------------------------------------------


@pytest.mark.parametrize("schema", SCHEMAS[1:])
def test_merging_maps_i_to_ceil_half(schema: int) -> None:
    """A value's bucket one schema down is ``ceil(i / 2)`` of its bucket (reference only)."""
    values = random_floats(seed=2000 + schema, count=400)
    values += [math.ldexp(1.0, e) for e in range(-1074, 1024, 5)]
    values += [x for _, below, above in STRADDLES[schema][::9] for x in (below, above)]
    for v in values:
        assert ref_index(v, schema - 1) == -(-ref_index(v, schema) // 2), v


def expected_split(values: Sequence[float], lay: Layout) -> Buckets:
    """`split` by the reference: the finest schema from ``lay``'s down with few enough buckets."""
    schema = lay.schema
    while True:
        positive: Counter[int] = Counter()
        negative: Counter[int] = Counter()
        for v in values:
            if abs(v) > lay.zero_threshold:  # not NaN
                i = ref_index(MAX if math.isinf(v) else v, schema) + math.isinf(v)
                (positive if v > 0 else negative)[i] += 1
        if len(positive) + len(negative) <= lay.max_buckets or schema == MIN_SCHEMA:
            break
        schema -= 1
    zero = sum(abs(v) <= lay.zero_threshold for v in values)
    return Buckets(
        schema,
        lay.zero_threshold,
        float(zero),
        {i: float(c) for i, c in positive.items()},
        {i: float(c) for i, c in negative.items()},
    )


def lognormal_values(seed: int, count: int, sigma: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.choice((1, 1, 1, -1)) * rng.lognormvariate(0, sigma) for _ in range(count)]


@pytest.mark.parametrize("max_buckets", [1, 2, 5, 20, 160])
@pytest.mark.parametrize("schema", SCHEMAS)
def test_split_matches_the_reference(schema: int, max_buckets: int) -> None:
    lay = lay_for(schema, max_buckets, zero_threshold=1e-3)
    values = lognormal_values(seed=schema * 1000 + max_buckets, count=300, sigma=3)
    values += [0.0, 1e-4, -1e-3, math.nan, INF]
    got = observe(values, lay)
    assert got == expected_split(values, lay)
    assert got.zero_count == sum(abs(v) <= 1e-3 for v in values) >= 3
    assert len(got.positive) + len(got.negative) <= max_buckets or got.schema == MIN_SCHEMA


def test_split_stops_at_schema_minus_4() -> None:
    lay = lay_for(8, max_buckets=1)
    values = [math.ldexp(1.0, e) for e in range(-1000, 1000, 50)]
    got = observe(values, lay)
    assert got.schema == MIN_SCHEMA and len(got.positive) > 1
    assert got == expected_split(values, lay)


def test_split_counts_both_signs_and_ignores_empty_buckets() -> None:
    lay = lay_for(3, max_buckets=2)
    one, two = bucket_key(1.0, lay), bucket_key(-1.5, lay)
    assert one is not None and two is not None
    got = split({one: 1.0, two: 2.0, ZERO: 4.0, one + 1: 0.0, two + 5: 0.0}, lay)
    assert got == Buckets(3, 0.0, 4.0, {0: 1.0}, {ref_index(1.5, 3): 2.0})
    third = bucket_key(3.0, lay)
    assert third is not None
    assert split({one: 1.0, two: 2.0, third: 1.0}, lay).schema < 3


@pytest.mark.parametrize("schema", [-3, 0, 3, 8])
def test_split_does_not_depend_on_insertion_order(schema: int) -> None:
    """Any order of the counts, and any partition of them among workers, gives one result."""
    lay = lay_for(schema, max_buckets=10, zero_threshold=0.01)
    values = lognormal_values(seed=schema + 50, count=400, sigma=4)
    counts: dict[int, float] = {}
    for v in values:
        key = bucket_key(v, lay)
        assert key is not None
        counts[key] = counts.get(key, 0.0) + 1
    want = split(counts, lay)
    assert want == expected_split(values, lay)
    rng = random.Random(schema)
    items = list(counts.items())
    for _ in range(20):
        rng.shuffle(items)
        got = split(dict(items), lay)
        assert got == want
        assert spans(got.positive) == spans(want.positive)
        assert spans(got.negative) == spans(want.negative)
    workers: list[dict[int, float]] = [{}, {}, {}]
    for v in values:
        key = bucket_key(v, lay)
        assert key is not None
        cell = rng.choice(workers)
        cell[key] = cell.get(key, 0.0) + 1
    merged: dict[int, float] = {}
    for cell in reversed(workers):
        for key, count in cell.items():
            merged[key] = merged.get(key, 0.0) + count
    assert split(merged, lay) == want
