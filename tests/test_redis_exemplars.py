"""Exemplars through Redis: sent when they change, newest wins, never a batch's fate."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Histogram, agenerate_metrics, generate_metrics
from apytheus.backends._buffer import DeltaBuffer
from apytheus.backends._exemplars import decode, encode
from apytheus.backends.redis import RedisBackend


def exemplar_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " # {" in line]


def test_only_exemplars_written_since_the_last_batch_are_sent(
    registry: CollectorRegistry,
) -> None:
    counter = Counter("jobs", "Jobs", registry=registry)
    histogram = Histogram("t", "T", buckets=(1.0, 2.0), registry=registry)
    buffer = DeltaBuffer("w")
    buffer.track(counter._family.spec, counter._series)
    buffer.track(histogram._family.spec, histogram._series)

    def sent() -> list[str]:
        batch = buffer.take(time.time())
        if batch is None:
            return []
        buffer.ack(batch, buffer.mark(batch))
        return [f for ops in batch.ops for f, _ in ops.exemplars]

    counter.inc(exemplar={"id": "1"})
    histogram.observe(0.5, {"id": "2"})
    assert sent() == ["[]", "[]\t1.0"]
    counter.inc()
    histogram.observe(1.5)
    assert sent() == []  # counts only
    histogram.observe(3, {"id": "3"})
    assert sent() == ["[]\t+Inf"]  # the bucket that changed, not the others


def test_an_exemplar_that_cannot_travel_stays_home_and_garbage_reads_as_none() -> None:
    from apytheus._labels import LabelSet
    from apytheus._samples import Exemplar

    labels = LabelSet(("trace_id",), ("ab",))
    assert encode(Exemplar(LabelSet(("a",), ("x" * 5000,)), 1.0, 1.0)) is None
    assert encode(Exemplar(labels, 1.0, float("nan"))) is None
    good = encode(Exemplar(labels, 0.25, 1700000000.5))
    assert good == '1700000000.5 0.25 [["trace_id","ab"]]'
    assert decode(good.encode()) == Exemplar(labels, 0.25, 1700000000.5)
    for raw in (b"", b"1 2", b"x 1 []", b'1 2 [["__x","y"]]', b"1 2 {}", b"\xff 1 []"):
        assert decode(raw) is None, raw
    assert decode(b'1 2 [["a","' + b"y" * 200 + b'"]]') is None  # over 128 characters


async def test_the_newest_exemplar_wins_whoever_wrote_it(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    backend = make_redis_backend(redis_server)
    counter = Counter("jobs", "Jobs", ["q"], registry=registry)
    future = time.time() + 3600
    with redis_server.client() as client:  # another worker's, newer than what comes next
        client.hset(f"{{{key_prefix}|jobs}}:x", '["a"]', f'{future!r} 5.0 [["id","other"]]')
    counter.labels("a").inc(exemplar={"id": "mine"})
    counter.labels("b").inc(exemplar={"id": "mine"})
    assert backend.flush_sync()
    text = await agenerate_metrics(registry, openmetrics=True)
    first, second = exemplar_lines(text)
    assert first.startswith('jobs_total{q="a"} 1.0 # {id="other"} 5.0 ')
    assert second.startswith('jobs_total{q="b"} 1.0 # {id="mine"} 1.0 ')
    assert exemplar_lines(generate_metrics(registry)) == []  # the text format has none


def test_a_broken_exemplars_key_never_stops_the_counts(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_redis_backend(redis_server)
    with redis_server.client() as client:
        client.set(f"{{{key_prefix}|jobs}}:x", "a string, not a hash")
        client.hset(f"{{{key_prefix}|t}}:x", "[]\t1.0", "not an exemplar")
    counter = Counter("jobs", "Jobs", ["q"], registry=registry)
    histogram = Histogram("t", "T", buckets=(1.0,), registry=registry)
    counter.labels("a").inc(2, exemplar={"id": "1"})
    histogram.observe(3.0, {"id": "2"})
    histogram.observe(0.5)
    with caplog.at_level(logging.WARNING, logger="apytheus"):
        assert backend.flush_sync()
        counter.labels("a").inc(exemplar={"id": "3"})
        counter.remove("a")  # deleting its exemplar fails too: the series goes all the same
        counter.labels("b").inc(exemplar={"id": "4"})
        assert backend.flush_sync()
    assert caplog.text.count("Redis refused exemplars") == 1
    assert backend.dropped_updates == 0 and backend.flush_errors == 0
    text = generate_metrics(registry, openmetrics=True)
    assert 'jobs_total{q="b"} 1.0\n' in text  # unreadable exemplars: none shown
    assert 't_bucket{le="1.0"} 1.0\n' in text  # garbage: none shown
    (line,) = exemplar_lines(text)
    assert line.startswith('t_bucket{le="+Inf"} 2.0 # {id="2"} 3.0 ')


def test_a_removed_series_takes_its_exemplars_with_it(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    backend = make_redis_backend(redis_server)
    counter = Counter("jobs", "Jobs", ["q"], registry=registry)
    histogram = Histogram("t", "T", ["q"], buckets=(1.0,), registry=registry)
    for q in "ab":
        counter.labels(q).inc(exemplar={"id": q})
        histogram.labels(q).observe(0.5, {"id": q})
        histogram.labels(q).observe(5, {"id": q})
    assert backend.flush_sync()
    assert len(exemplar_lines(generate_metrics(registry, openmetrics=True))) == 6
    counter.remove("a")
    histogram.remove("a")
    assert backend.flush_sync()
    with redis_server.client() as client:
        for name in ("jobs", "t"):
            fields = sorted(client.hkeys(f"{{{key_prefix}|{name}}}:x"))
            assert all(f.startswith(b'["b"]') for f in fields), fields
    assert len(exemplar_lines(generate_metrics(registry, openmetrics=True))) == 3
    counter.labels("a").inc()  # made again, without one: it shows none
    assert backend.flush_sync()
    assert len(exemplar_lines(generate_metrics(registry, openmetrics=True))) == 3


def test_a_batch_sent_again_after_a_removal_brings_no_orphan_exemplar_back(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """Worker A's batch (with an exemplar) is applied, its reply lost; worker B removes the
    series; A sends the same batch again. The exemplar must not come back without its
    series, to show later on a new series of the same labels."""
    from apytheus.backends._redis_client import Connector
    from apytheus.backends._redis_store import RedisStore

    store = RedisStore(Connector({"url": redis_server.url}), key_prefix, 10.0)
    a_jobs, b_jobs = (Counter("jobs", "J", ["q"], registry=None) for _ in "ab")
    a, b = DeltaBuffer("A"), DeltaBuffer("B")

    def flush(buffer: DeltaBuffer) -> None:
        batch = buffer.take(time.time())
        mark = buffer.mark(batch)
        written = store.write(batch, buffer.worker, time.time(), mark)
        buffer.ack(batch, mark, written.confirmed, written.behind)

    try:
        a_child = a_jobs.labels("s")
        a_child.inc(exemplar={"trace_id": "old"})
        a.track(a_jobs._family.spec, a_child._series)
        b_child = b_jobs.labels("s")
        b_child.inc()
        b.track(b_jobs._family.spec, b_child._series)
        flush(b)
        batch = a.take(time.time())
        mark = a.mark(batch)
        store.write(batch, "A", time.time(), mark)  # applied; say its reply was lost
        b.remove(b_jobs._family.spec, b_child._series.labels)
        flush(b)
        store.write(batch, "A", time.time(), mark)  # A's retry of the same batch
        assert store.client.hgetall(f"{{{key_prefix}|jobs}}:x") == {}
        again = Counter("jobs", "J", ["q"], registry=None).labels("s")
        again.inc()
        b.track(b_jobs._family.spec, again._series)
        flush(b)
        (series,) = store.read([b_jobs._family.spec], time.time())[b_jobs._family.spec]
        assert getattr(series, "exemplar", None) is None
    finally:
        store.close()
