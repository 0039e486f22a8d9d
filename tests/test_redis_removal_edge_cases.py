"""Removals at awkward moments: during an outage, a hung flush, between flushes, many workers."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from conftest import wait_for
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Gauge
from apytheus.backends.redis import RedisBackend


@pytest.fixture
def own_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory()


def test_a_series_removed_during_an_outage_stays_removed(
    own_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(own_server)
    c = Counter("jobs", "Jobs", ["k"], registry=registry)
    c.labels(k="a").inc()
    c.labels(k="b").inc()
    assert backend.flush_sync()
    c.labels(k="a").inc(2)
    own_server.pause()
    try:
        assert not backend.flush_sync()  # the batch with a=+2 stays pending
        c.remove(k="a")
    finally:
        own_server.resume()
    assert backend.flush_sync()
    assert registry.get_sample_value("jobs_total", {"k": "a"}) is None
    assert registry.get_sample_value("jobs_total", {"k": "b"}) == 1.0


def test_removing_a_series_does_not_wait_for_a_hung_flush(
    own_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(own_server, socket_timeout=3)
    c = Counter("jobs", "Jobs", ["k"], registry=registry)
    c.labels(k="a").inc()
    assert backend.flush_sync()
    c.labels(k="b").inc()
    own_server.pause()
    try:
        flush = threading.Thread(target=backend.flush_sync)
        flush.start()
        wait_for(backend._flush_lock.locked, what="the flush to start")
        c.remove(k="a")  # returns while the flush still hangs on Redis
        c.labels(k="new").inc()
        assert flush.is_alive()
    finally:
        own_server.resume()
        flush.join(10)


def test_removing_a_gauge_series_removes_every_workers_value(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(redis_server)
    g = Gauge("level", "L", ["k"], registry=registry)
    other = RedisBackend(dict(backend.config))  # another worker, which then dies
    other.attach(g._family.spec, g.labels(k="a")._series)
    g.labels(k="a").set(5)
    assert other.flush_sync()
    other.close(flush=False)
    assert backend.flush_sync()
    assert registry.get_sample_value("level", {"k": "a"}) == 10.0
    g.remove(k="a")
    assert backend.flush_sync()
    assert registry.get_sample_value("level", {"k": "a"}) is None


def test_series_removed_and_made_again_between_flushes_keep_their_new_values(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """``clear()`` then fill again (a refresh from a poll): the deletes go before the
    new batch, so they cannot wipe what it writes."""
    backend = make_redis_backend(redis_server)
    g = Gauge("rows", "Rows per table", ["table"], registry=registry)
    c = Counter("hits", "Hits", ["path"], registry=registry)
    g.labels(table="a").set(10)
    c.labels(path="/").inc(5)
    assert backend.flush_sync()
    g.clear()
    g.labels(table="a").set(11)
    c.remove("/")
    c.labels(path="/").inc(2)
    assert backend.flush_sync()
    c.labels(path="/").inc(1)
    assert registry.get_sample_value("rows", {"table": "a"}) == 11.0
    assert registry.get_sample_value("hits_total", {"path": "/"}) == 3.0


def test_a_retried_batch_goes_before_the_deletes_queued_after_it(
    own_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """A batch that failed stays pending; a series removed meanwhile must stay removed
    when the old batch (which still holds it) is finally applied."""
    backend = make_redis_backend(own_server)
    c = Counter("hits", "Hits", ["path"], registry=registry)
    c.labels(path="/").inc(5)
    own_server.pause()
    try:
        assert not backend.flush_sync()  # the batch with path="/" stays pending
    finally:
        own_server.resume()
    c.remove("/")
    assert backend.flush_sync()
    assert registry.get_sample_value("hits_total", {"path": "/"}) is None
