"""Native histograms in one process: parameters, recording, the bucket limit, every format.

The bucket math itself is checked against the spec in test_native_buckets.py;
across workers on Redis in test_multiprocess.py and test_flush_exactly_once.py.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from test_protobuf_encoder import decode

from apytheus import CollectorRegistry, Histogram, generate_metrics
from apytheus._native import bucket_key, layout, spans, split
from apytheus.exposition import PROTOBUF_CONTENT_TYPE, render
from apytheus.middleware import MetricsMiddleware

PROTO = PROTOBUF_CONTENT_TYPE.replace(" ", "")


def scrape(registry: CollectorRegistry) -> dict[str, Any]:
    """The registry's families in protobuf, decoded by the official runtime, by name."""
    body, content_type = render(registry, PROTO)
    assert content_type == PROTOBUF_CONTENT_TYPE
    return {f.name: f for f in decode(body)}


def counts(side: Any, deltas: Any) -> list[tuple[int, int]]:
    """(index, count) of every bucket in spans and deltas, empty ones inside spans too."""
    out: list[tuple[int, int]] = []
    index, running, at = 0, 0, 0
    for span in side:
        index += span.offset
        for _ in range(span.length):
            running += deltas[at]
            at += 1
            out.append((index, running))
            index += 1
    return out


@pytest.mark.parametrize(
    ("factor", "schema"), [(1.1, 3), (2, 0), (1.01, 7), (1.0001, 8), (1e6, -4), (4, -1)]
)
def test_the_schema_is_the_coarsest_within_the_factor(factor: float, schema: int) -> None:
    registry = CollectorRegistry()
    h = Histogram("h", "H", native_bucket_factor=factor, registry=registry)
    h.observe(1.5)
    (metric,) = scrape(registry)["h"].metric
    assert metric.histogram.schema == schema


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"native_bucket_factor": 1}, ValueError),
        ({"native_bucket_factor": 0.5}, ValueError),
        ({"native_bucket_factor": math.nan}, ValueError),
        ({"native_bucket_factor": "1.1"}, TypeError),
        ({"native_bucket_factor": 1.1, "native_max_buckets": 0}, ValueError),
        ({"native_bucket_factor": 1.1, "native_max_buckets": 2.5}, ValueError),
        ({"native_bucket_factor": 1.1, "native_zero_threshold": -1e-9}, ValueError),
        ({"native_bucket_factor": 1.1, "native_zero_threshold": math.inf}, ValueError),
    ],
)
def test_bad_native_options_raise_and_register_nothing(
    options: dict[str, Any], error: type[Exception]
) -> None:
    registry = CollectorRegistry()
    with pytest.raises(error):
        Histogram("h", "H", registry=registry, **options)
    assert registry.collect() == []


def test_native_buckets_hold_every_observation_in_its_bucket() -> None:
    registry = CollectorRegistry()
    h = Histogram("h", "H", buckets=(1.0,), native_bucket_factor=1.1, registry=registry)
    values = [0.5, 1.0, 1.5, 3.0, 3.1, -2.0, -0.001, 0.0, 1e-300, 7e12, math.inf, -math.inf]
    for v in values:
        h.observe(v)
    h.observe(math.nan)  # a native histogram takes NaN: in the count only
    lay = layout(1.1, 160, 2.0**-128)
    by_key: dict[int, float] = {}
    for v in values:
        key = bucket_key(v, lay)
        assert key is not None
        by_key[key] = by_key.get(key, 0) + 1
    expected = split(by_key, lay)
    (metric,) = scrape(registry)["h"].metric
    hist = metric.histogram
    assert hist.sample_count == len(values) + 1 and math.isnan(hist.sample_sum)
    assert (hist.schema, hist.zero_threshold, hist.zero_count) == (3, 2.0**-128, 2)
    for side, got_spans, got_deltas in (
        (expected.positive, hist.positive_span, hist.positive_delta),
        (expected.negative, hist.negative_span, hist.negative_delta),
    ):
        want_spans, want_counts = spans(side)
        assert [(s.offset, s.length) for s in got_spans] == want_spans
        assert [c for _, c in counts(got_spans, got_deltas)] == want_counts
    # the classic bucket is kept alongside (1.0 and below: 0.5, 1.0, the negatives, 0, 1e-300)
    assert [b.cumulative_count for b in hist.bucket if b.upper_bound == 1.0] == [7]


def test_a_classic_histogram_still_refuses_nan() -> None:
    h = Histogram("h", "H", registry=CollectorRegistry())
    with pytest.raises(ValueError, match="NaN"):
        h.observe(math.nan)


def test_too_many_buckets_lower_the_schema_the_same_way_every_time() -> None:
    registry = CollectorRegistry()
    h = Histogram("h", "H", native_bucket_factor=1.01, native_max_buckets=10, registry=registry)
    for i in range(200):
        h.observe(1.05**i)
    (metric,) = scrape(registry)["h"].metric
    hist = metric.histogram
    populated = [c for _, c in counts(hist.positive_span, hist.positive_delta) if c]
    assert len(populated) <= 10 and sum(populated) == 200
    assert hist.schema < 7
    assert scrape(registry)["h"].metric[0] == metric  # deterministic
    # the limit is the coarsest schema that fits: one step finer would not
    lay = layout(1.01, 10, 2.0**-128)
    finer = split(
        {k: 1 for k in (bucket_key(1.05**i, lay) for i in range(200)) if k is not None},
        lay._replace(max_buckets=10**9),
    )
    assert finer.schema == 7


def test_an_empty_native_histogram_carries_the_no_op_span() -> None:
    registry = CollectorRegistry()
    Histogram(
        "h", "H", buckets=(), native_bucket_factor=2, native_zero_threshold=0, registry=registry
    )
    (metric,) = scrape(registry)["h"].metric
    hist = metric.histogram
    assert hist.sample_count == 0 and list(hist.bucket) == []
    assert [(s.offset, s.length) for s in hist.positive_span] == [(0, 0)]


def test_the_text_formats_show_classic_buckets_or_count_and_sum() -> None:
    registry = CollectorRegistry()
    only = Histogram("only", "O", buckets=(), native_bucket_factor=1.1, registry=registry)
    mixed = Histogram("mixed", "M", buckets=(1.0,), native_bucket_factor=1.1, registry=registry)
    for v in (0.5, 2.0):
        only.observe(v)
        mixed.observe(v)
    for openmetrics in (False, True):
        text = generate_metrics(registry, openmetrics=openmetrics)
        # native only: its count (the +Inf bucket OpenMetrics requires) and its sum
        assert 'only_bucket{le="+Inf"} 2.0\nonly_count 2.0\nonly_sum 2.5\n' in text
        assert 'mixed_bucket{le="1.0"} 1.0\nmixed_bucket{le="+Inf"} 2.0\n' in text
    # protobuf leaves the classic +Inf bucket out: a native-only histogram has no classic one
    families = scrape(registry)
    assert list(families["only"].metric[0].histogram.bucket) == []
    assert len(families["mixed"].metric[0].histogram.bucket) == 1


@pytest.mark.parametrize("only", [False, True])
async def test_the_middleware_records_request_durations_as_native_histograms(only: bool) -> None:
    registry = CollectorRegistry()

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = MetricsMiddleware(
        Starlette(routes=[Route("/hello", hello)]),
        registry=registry,
        buckets=() if only else (0.1, 1.0),
        native_histograms=True,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(25):
            assert (await client.get("/hello")).status_code == 200
    (metric,) = scrape(registry)["http_request_duration_seconds"].metric
    hist = metric.histogram
    assert hist.sample_count == 25 and hist.schema == 3
    assert (
        sum(c for _, c in counts(hist.positive_span, hist.positive_delta)) + hist.zero_count == 25
    )
    assert (len(hist.bucket) == 0) is only


@pytest.mark.parametrize("factor", [1e6, 20, 4, 2, 1.5, 1.2, 1.1, 1.05, 1.02, 1.01, 1.001, 1.0001])
def test_the_record_path_finds_the_bucket_bucket_key_gives(factor: float) -> None:
    """observe() bisects one table for most values: the same bucket as the spec's math."""
    import random

    from apytheus._native import fast

    registry = CollectorRegistry()
    h = Histogram("h", "H", buckets=(), native_bucket_factor=factor, registry=registry)
    native = h._family.native
    assert native is not None
    table = fast(native)
    rng = random.Random(factor)
    values = [2.0 ** rng.uniform(-40, 40) * rng.choice((1, -1)) for _ in range(2000)]
    edges = [table.bounds[i] for i in range(0, len(table.bounds), max(1, len(table.bounds) // 300))]
    for b in [*edges, table.low, table.high, native.zero_threshold, 1.0, 2.0**-32, 2.0**32]:
        values += [b, math.nextafter(b, 0), math.nextafter(b, math.inf)]
    values += [0.0, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]
    expected: dict[int, int] = {}
    for v in values:
        h.observe(v)
        key = bucket_key(v, native)
        assert key is not None
        expected[key] = expected.get(key, 0) + 1
    assert h._series.native_snapshot() == expected


@pytest.mark.parametrize("classic", [False, True])
def test_native_exemplars_go_in_the_histograms_exemplars_with_timestamps(classic: bool) -> None:
    registry = CollectorRegistry()
    h = Histogram(
        "h", "H", buckets=(1.0,) if classic else (), native_bucket_factor=1.1, registry=registry
    )
    h.observe(0.4, exemplar={"trace_id": "abc"})
    h.observe(3.0, exemplar={"trace_id": "def"})
    (metric,) = scrape(registry)["h"].metric
    hist = metric.histogram
    found = {(e.label[0].value, e.value) for e in hist.exemplars}
    # one per classic bucket (native only: one bucket, +Inf, so the newest)
    assert found == ({("abc", 0.4), ("def", 3.0)} if classic else {("def", 3.0)})
    assert all(e.timestamp.seconds > 1_700_000_000 for e in hist.exemplars)
    if classic:  # the classic bucket keeps its own too
        assert [b.exemplar.value for b in hist.bucket if b.HasField("exemplar")] == [0.4, 3.0]
    else:  # no classic +Inf bucket appears because of an exemplar
        assert list(hist.bucket) == []


def buckets_total(hist: Any) -> int:
    """What a decoded native histogram's zero bucket and buckets hold."""
    side = counts(hist.positive_span, hist.positive_delta)
    side += counts(hist.negative_span, hist.negative_delta)
    return int(hist.zero_count) + sum(c for _, c in side)


def test_count_and_buckets_agree_while_threads_observe() -> None:
    """Prometheus drops a whole scrape whose native histogram has more in its buckets
    than its count: the count is what the buckets hold, read at the same moment."""
    import sys
    import threading

    registry = CollectorRegistry()
    h = Histogram("h", "H", ["t"], native_bucket_factor=1.1, registry=registry)
    done = threading.Event()

    def observe(t: str) -> None:
        child = h.labels(t)
        i = 0
        while not done.is_set():
            child.observe(0.001 * (1 + i % 500))
            i += 1

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: tear a read if one can
    threads = [threading.Thread(target=observe, args=(str(n),)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(150):
            for family in scrape(registry).values():
                for metric in family.metric:
                    hist = metric.histogram
                    assert hist.sample_count == buckets_total(hist)
    finally:
        done.set()
        for t in threads:
            t.join(10)
        sys.setswitchinterval(switch)


def test_nan_counts_in_the_count_only_and_its_exemplar_goes_on_inf() -> None:
    registry = CollectorRegistry()
    h = Histogram("h", "H", buckets=(1.0,), native_bucket_factor=1.1, registry=registry)
    h.observe(0.5)
    h.observe(math.nan, exemplar={"trace_id": "x"})
    (metric,) = scrape(registry)["h"].metric
    hist = metric.histogram
    assert hist.sample_count == 2 and buckets_total(hist) == 1  # NaN is in no bucket
    assert [b.exemplar.HasField("value") for b in hist.bucket] == [False, True]  # on +Inf
    labeled = Histogram("l", "L", ["a"], native_bucket_factor=1.1, registry=registry)
    from apytheus.exceptions import UnobservableMetricException

    with pytest.raises(UnobservableMetricException):
        labeled.observe(math.nan)


def test_after_redis_lost_its_data_a_nan_sum_is_sent_again(
    redis_backend: Any, registry: CollectorRegistry
) -> None:
    h = Histogram("h", "H", buckets=(), native_bucket_factor=1.1, registry=registry)
    h.observe(1.0)
    h.observe(math.nan)
    assert redis_backend.flush_sync()
    redis_backend._store.client.flushall()  # Redis lost everything
    h.observe(math.nan)
    assert redis_backend.flush_sync()
    (metric,) = scrape(registry)["h"].metric
    hist = metric.histogram
    assert math.isnan(hist.sample_sum)  # not the 0.0 of a sum never sent again
    assert hist.sample_count == buckets_total(hist) + 1  # the new NaN: in the count only


def test_native_buckets_turned_on_over_classic_data_in_redis_keep_count_and_buckets_equal(
    redis_backend: Any, key_prefix: str
) -> None:
    """A deploy that adds native buckets to a histogram with classic totals in Redis."""
    old = CollectorRegistry()
    Histogram("h", "H", registry=old).observe(0.5)
    assert redis_backend.flush_sync()
    new = CollectorRegistry()
    h = Histogram("h", "H", native_bucket_factor=1.1, registry=new)
    h.observe(2.0)
    assert redis_backend.flush_sync()
    (metric,) = scrape(new)["h"].metric
    hist = metric.histogram
    assert hist.sample_count == buckets_total(hist) == 1  # the classic totals count 2


@pytest.mark.parametrize("factor", [1e6, 2, 1.1, 1.01, 1.0001])
def test_the_record_path_finds_the_classic_bucket_bisect_gives(factor: float) -> None:
    """With classic buckets kept, the fast path takes most classic buckets from a table."""
    import random
    from bisect import bisect_left

    registry = CollectorRegistry()
    bounds = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 2.0**-10, 1e9)
    h = Histogram("h", "H", buckets=sorted(bounds), native_bucket_factor=factor, registry=registry)
    rng = random.Random(factor)
    values = [2.0 ** rng.uniform(-40, 40) * rng.choice((1, -1)) for _ in range(3000)]
    for b in bounds:  # on, just below and just above every classic bound
        values += [b, math.nextafter(b, 0), math.nextafter(b, math.inf)]
    expected = [0] * (len(bounds) + 1)
    for v in values:
        h.observe(v)
        expected[bisect_left(sorted(bounds), v)] += 1
    counts_, total = h._series.snapshot()
    assert counts_ == expected
    assert total == pytest.approx(math.fsum(values))
