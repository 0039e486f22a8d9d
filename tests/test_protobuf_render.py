"""A scrape answered in protobuf, decoded with the official runtime: exact values, both backends.

The registry holds every type; `render` with the header Prometheus sends with
native histograms answers in protobuf, and every value, created timestamp,
exemplar and unit is read back with Google's protobuf runtime (the schema is
built from Prometheus' ``metrics.proto`` field numbers in test_protobuf_encoder).
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from test_protobuf_encoder import decode, labels_of

from apytheus import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from apytheus.backends.redis import RedisBackend
from apytheus.exposition import PROTOBUF_CONTENT_TYPE, arender, render

pytest.importorskip("google.protobuf", reason="the official protobuf runtime decodes the bytes")

ACCEPT = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
COUNTER, GAUGE, SUMMARY, HISTOGRAM = 0, 1, 2, 4


def fill(registry: CollectorRegistry) -> float:
    """One metric of every type, with known values; returns the time before recording."""
    start = time.time()
    c = Counter("jobs", "Jobs done", ["queue"], registry=registry, unit="seconds")
    c.labels("fast").inc(3, exemplar={"trace_id": "abc"})
    c.labels("slow").inc(0.5)
    Gauge("temp", "Temperature", registry=registry, unit="celsius").set(-4.25)
    h = Histogram("wait", "Wait", ["route"], buckets=(0.1, 1.0), registry=registry)
    for v in (0.05, 0.5, 0.5, 7.0):
        h.labels("/a").observe(v)
    h.labels("/a").observe(0.7, exemplar={"trace_id": "def"})
    Summary("size", "Size", registry=registry, unit="bytes").observe(12.5)
    Info("build", "Build", registry=registry).info({"version": "1.2"})
    Enum("state", "State", states=["up", "down"], registry=registry).state("down")
    Counter("shop.orders", "Orders", registry=registry).inc(2)
    return start


def check(body: bytes, content_type: str, start: float, exemplars: bool = True) -> None:
    assert content_type == PROTOBUF_CONTENT_TYPE
    families = {f.name: f for f in decode(body)}
    end = time.time()

    def created(ts: Any) -> None:
        assert start - 1 <= ts.seconds + ts.nanos / 1e9 <= end + 1

    jobs = families["jobs_seconds_total"]
    assert (jobs.type, jobs.help, jobs.unit) == (COUNTER, "Jobs done", "seconds")
    by_queue = {labels_of(m)[0][1]: m for m in jobs.metric}
    assert by_queue["fast"].counter.value == 3.0 and by_queue["slow"].counter.value == 0.5
    if exemplars:  # the Redis backend shows none yet (docs/multiprocess.md, Limits)
        ex = by_queue["fast"].counter.exemplar
        assert labels_of(ex) == [("trace_id", "abc")] and ex.value == 3.0
    for m in jobs.metric:
        created(m.counter.created_timestamp)

    temp = families["temp_celsius"]
    assert (temp.type, temp.unit, temp.metric[0].gauge.value) == (GAUGE, "celsius", -4.25)

    (wait,) = families["wait"].metric
    assert families["wait"].type == HISTOGRAM and labels_of(wait) == [("route", "/a")]
    hist = wait.histogram
    assert (hist.sample_count, hist.sample_sum) == (5, 0.05 + 0.5 + 0.5 + 7.0 + 0.7)
    buckets = [(b.upper_bound, b.cumulative_count) for b in hist.bucket]
    assert buckets[:2] == [(0.1, 1), (1.0, 4)]
    assert all(b == (math.inf, 5) for b in buckets[2:])  # +Inf: only if written, and right
    if exemplars:
        found = [b.exemplar for b in hist.bucket if b.HasField("exemplar")]
        assert [(labels_of(e), e.value) for e in found] == [([("trace_id", "def")], 0.7)]
    created(hist.created_timestamp)

    (size,) = families["size_bytes"].metric
    assert families["size_bytes"].type == SUMMARY
    assert (size.summary.sample_count, size.summary.sample_sum) == (1, 12.5)
    created(size.summary.created_timestamp)

    (build,) = families["build_info"].metric
    assert families["build_info"].type == GAUGE
    assert (labels_of(build), build.gauge.value) == ([("version", "1.2")], 1.0)

    states = {labels_of(m)[0][1]: m.gauge.value for m in families["state"].metric}
    assert states == {"up": 0.0, "down": 1.0}

    assert families["shop_orders_total"].metric[0].counter.value == 2.0


def test_every_type_in_protobuf_in_process(registry: CollectorRegistry) -> None:
    start = fill(registry)
    check(*render(registry, ACCEPT), start)


async def test_every_type_in_protobuf_on_redis(
    redis_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    start = fill(registry)
    assert redis_backend.flush_sync()
    body, content_type = await arender(registry, ACCEPT)
    check(body, content_type, start, exemplars=False)
    # the created timestamps are Redis': the same on a second scrape, and in OpenMetrics
    again, _ = render(registry, ACCEPT)
    assert again == body
