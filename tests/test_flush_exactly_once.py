"""Every batch is applied exactly once: a retry, a lost reply or a restart never counts twice.

The flush script checks and stores the worker's batch number atomically, so
sending a batch again (after any failure) is always safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from loads import Load
from redis_server import RedisServer
from tcp_proxy import DroppingProxy

from apytheus import CollectorRegistry, Counter, Histogram
from apytheus.backends import HistogramSeries
from apytheus.backends.redis import RedisBackend


@pytest.fixture
def own_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    """A server of the test's own (it gets stopped); AOF so a killed server keeps its data."""
    return redis_server_factory("--appendonly", "yes", "--appendfsync", "always")


def test_a_batch_sent_twice_is_applied_once(
    redis_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    """A retry after a lost reply re-sends the same batch: the script skips it."""
    c = Counter("jobs", "Jobs", registry=registry)
    h = Histogram("lat", "L", registry=registry)
    redis_backend.flush_sync()
    c.inc(4)
    h.observe(0.2)
    buffer, store = redis_backend._buffer, redis_backend._store
    with redis_backend._flush_lock:
        batch = buffer.take(time.time())
        assert batch is not None
        mark = buffer.mark(batch)
        store.write(batch, buffer.worker, time.time(), mark)
        written = store.write(batch, buffer.worker, time.time(), mark)  # the "retry"
        assert written.confirmed  # the retry finds the mark the first write left
        buffer.ack(batch, mark, written.confirmed)
    assert registry.get_sample_value("jobs_total") == 4.0
    assert registry.get_sample_value("lat_count") == 1.0


def test_a_lost_reply_after_redis_applied_the_batch_is_not_counted_twice(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    proxy = DroppingProxy(redis_server.port)
    try:
        backend = make_redis_backend(proxy.port)
        load = Load(registry)
        load.record(30)
        assert backend.flush_sync()
        load.record(20)
        proxy.drop_after(b"EVALSHA")
        assert not backend.flush_sync()  # Redis applied it, the client saw the connection drop
        assert proxy.dropped.is_set()
        assert backend.flush_sync()  # the same batch again: the script skips it
        assert load.totals() == (50.0, 50.0)
    finally:
        proxy.close()


def test_killed_and_restarted_redis_gets_everything_exactly_once(
    own_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(own_server.port)
    load = Load(registry)
    load.record(100)
    assert backend.flush_sync()
    own_server.kill()
    load.record(40)
    for _ in range(3):
        assert not backend.flush_sync()
    own_server.start()  # same port, same AOF; the script cache is empty now
    load.record(10)
    assert backend.flush_sync()
    assert load.totals() == (150.0, 150.0)


@pytest.mark.parametrize("fault", ["lost reply", "restart"])
def test_native_buckets_are_counted_once_after_a_lost_reply_or_a_restart(
    own_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    fault: str,
) -> None:
    """A native bucket is a total like any other: a batch sent again never adds it twice."""
    from apytheus._native import bucket_key

    proxy = DroppingProxy(own_server.port)
    try:
        backend = make_redis_backend(proxy.port if fault == "lost reply" else own_server)
        h = Histogram("wait", "W", buckets=(), native_bucket_factor=1.1, registry=registry)
        native = h._family.native
        assert native is not None
        # each bucket gets observations before and after the first flush
        values = [0.001 * 1.3 ** (i % 20) * (-1) ** (i % 3) for i in range(60)] + [0.0] * 5
        expected: dict[int, float] = {}
        for n, v in enumerate(values):
            h.observe(v)
            key = bucket_key(v, native)
            assert key is not None
            expected[key] = expected.get(key, 0) + 1
            if n == 30:
                assert backend.flush_sync()
        if fault == "lost reply":
            proxy.drop_after(b"EVALSHA")
            assert not backend.flush_sync()  # applied, but the reply was lost
            assert proxy.dropped.is_set()
        else:
            own_server.kill()
            assert not backend.flush_sync()
            own_server.start()  # the same AOF, an empty script cache
        assert backend.flush_sync()
        (series,) = backend.collect([h._family.spec])[h._family.spec]
        assert isinstance(series, HistogramSeries)
        assert series.native_snapshot() == expected
        assert registry.get_sample_value("wait_count") == len(values)
    finally:
        proxy.close()
