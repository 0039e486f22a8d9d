"""Removing series on the Redis backend: exactly once, in order with the updates.

A removal travels in the next batch, ahead of that batch's updates, under the
batch's sequence number. So a series removed and made again is deleted, then
written anew, and a batch that is retried (an outage, a lost reply, a script
cache reload) never deletes twice nor brings a removed series back. Some tests
run code "during the I/O" of a flush by wrapping the store's real write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Gauge, Histogram
from apytheus.backends import _redis_scripts
from apytheus.backends._buffer import DeltaBuffer
from apytheus.backends._series import BASE, ScalarSeries
from apytheus.backends.redis import RedisBackend


def during_writes(backend: RedisBackend, *actions: Callable[[], None]) -> None:
    """Run ``actions[i]`` just before the i-th write goes to Redis (the write is real)."""
    store = backend._store
    real = store.write
    pending = list(actions)

    def write(*args: Any, **kwargs: Any) -> Any:
        if pending:
            pending.pop(0)()
        return real(*args, **kwargs)

    store.write = write  # type: ignore[method-assign]


def test_a_series_made_again_before_an_outage_survives_the_retry(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    server = redis_server_factory()
    backend = make_redis_backend(server)
    c = Counter("hits", "Hits", ["path"], registry=registry)
    c.labels(path="/").inc(5)
    assert backend.flush_sync()
    c.remove("/")
    c.labels(path="/").inc(2)  # made again: 2 from now on
    server.pause()
    try:
        assert not backend.flush_sync()  # the removal and the new 2 wait together
    finally:
        server.resume()
    assert backend.flush_sync()  # the same batch: delete "/", then write 2
    c.labels(path="/").inc(1)
    assert registry.get_sample_value("hits_total", {"path": "/"}) == 3.0


def test_a_removal_during_a_retry_waits_for_the_next_batch(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """A flush retries its pending batch, then sends a new one: a series removed and
    made again while the retry's I/O runs is deleted in the new one, before its 2."""
    server = redis_server_factory()
    backend = make_redis_backend(server)
    c = Counter("hits", "Hits", ["path"], registry=registry)
    other = Counter("other", "O", registry=registry)
    c.labels(path="/").inc(5)
    assert backend.flush_sync()
    other.inc()
    server.pause()
    try:
        assert not backend.flush_sync()  # leaves a pending batch
    finally:
        server.resume()

    def remove_and_make_again() -> None:
        c.remove("/")
        c.labels(path="/").inc(2)

    during_writes(backend, remove_and_make_again)
    assert backend.flush_sync()
    assert registry.get_sample_value("hits_total", {"path": "/"}) == 2.0
    assert registry.get_sample_value("other_total") == 1.0


def test_a_second_removal_during_the_flush_is_not_forgotten(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(redis_server)
    c = Counter("hits", "Hits", ["path"], registry=registry)
    c.labels(path="/").inc(5)
    assert backend.flush_sync()
    c.remove("/")
    c.labels(path="/").inc(2)
    during_writes(backend, lambda: c.remove("/"))  # removed again while the batch is sent
    assert backend.flush_sync()  # delete "/", write 2
    assert registry.get_sample_value("hits_total", {"path": "/"}) is None  # deleted again


def test_a_script_cache_reload_never_deletes_twice(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """Only some scripts are cached (a node promoted without them): the batch is applied,
    the heartbeat script is not; the whole pipeline goes again after loading them."""
    server = redis_server_factory()
    backend = make_redis_backend(server)
    c = Counter("hits", "Hits", ["path"], registry=registry)
    c.labels(path="/").inc(5)
    c.labels(path="/other").inc(1)
    assert backend.flush_sync()
    c.remove("/")
    c.labels(path="/").inc(2)
    c.labels(path="/other").inc(3)  # applied twice, this would make 7
    client = server.client()
    client.script_flush()
    client.script_load(_redis_scripts.FLUSH_SCRIPT)  # the mark script is missing
    assert backend.flush_sync()
    assert registry.get_sample_value("hits_total", {"path": "/"}) == 2.0
    assert registry.get_sample_value("hits_total", {"path": "/other"}) == 4.0


def test_a_removal_queued_before_a_backend_switch_is_sent_by_the_new_backend(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    first = make_redis_backend(redis_server)
    c = Counter("hits", "Hits", ["path"], registry=registry)
    c.labels(path="/").inc(5)
    assert first.flush_sync()
    c.remove("/")
    second = make_redis_backend(redis_server)  # same store: it takes over the worker
    assert second.worker == first.worker
    assert second.flush_sync()
    assert registry.get_sample_value("hits_total", {"path": "/"}) is None


def hkeys_calls(server: RedisServer) -> int:
    stats = server.client().info("commandstats").get("cmdstat_hkeys", {})
    return int(stats.get("calls", 0))


def test_a_removal_deletes_every_field_of_the_series(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """A counter's one field goes by name (no hash is listed); a histogram's buckets go
    whatever bounds each worker declared (a rolling deploy may change them), and so does
    every worker's value of a gauge, known to this metric's batch numbers or not."""
    server = redis_server_factory()
    backend = make_redis_backend(server)
    c = Counter("hits", "H", ["k"], registry=registry)
    h = Histogram("lat", "L", ["k"], buckets=[0.1, 1], registry=registry)
    g = Gauge("temp", "T", ["k"], registry=registry)
    for k in "ab":
        c.labels(k=k).inc()
        h.labels(k=k).observe(0.5)
        g.labels(k=k).set(1)
    assert backend.flush_sync()
    client = server.client()
    client.hset(f"{{{key_prefix}|lat}}:v", '["a"]\t5.0', "1")  # an older deploy's bucket
    client.hset(f"{{{key_prefix}|temp}}:v", '["a"]\tpruned-worker', "5")  # no batch number
    before = hkeys_calls(server)
    c.remove("a")
    assert backend.flush_sync()
    assert hkeys_calls(server) == before  # by name
    h.remove("a")
    g.remove("a")
    assert backend.flush_sync()
    for name in ("hits", "lat", "temp"):
        for part in ("v", "c", "t"):
            keys = client.hkeys(f"{{{key_prefix}|{name}}}:{part}")
            fields = [f.decode() if isinstance(f, bytes) else f for f in keys]
            assert not [f for f in fields if f.startswith('["a"]')], (name, part, fields)
    assert registry.get_sample_value("hits_total", {"k": "b"}) == 1.0
    assert registry.get_sample_value("lat_count", {"k": "b"}) == 1.0
    assert registry.get_sample_value("temp", {"k": "b"}) == 1.0


def test_a_removal_deletes_no_other_series(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """Label values that start alike, escape alike or look alike stay."""
    backend = make_redis_backend(redis_server)
    c = Counter("c", "C", ["k"], registry=registry)
    g = Gauge("g", "G", ["k"], registry=registry, multiprocess_mode="all")
    values = ["a", "ab", 'a"', "a\t", "é", "e\u0301", "a\\", "\u2028"]
    for v in values:
        c.labels(k=v).inc()
        g.labels(k=v).set(1)
    assert backend.flush_sync()
    for v in ("a", "é"):
        c.remove(v)
        g.remove(v)
    assert backend.flush_sync()
    for v in values:
        expected = None if v in ("a", "é") else 1.0
        assert registry.get_sample_value("c_total", {"k": v}) == expected, v
        assert registry.get_sample_value("g", {"k": v, "worker": backend.worker}) == expected, v


def test_a_counter_that_another_worker_brings_back_gets_a_creation_time(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """Worker A removes a series that worker B goes on counting: B's next delta makes the
    series again, and its ``_created`` is the time of that flush (not 0)."""
    backend = make_redis_backend(redis_server)
    c = Counter("hits", "H", ["k"], registry=registry)
    c.labels(k="a").inc(1)
    other = ScalarSeries(c.labels(k="a")._series.labels)  # worker B's series
    b = DeltaBuffer("worker-b")
    b.track(c._family.spec, other)

    def flush_b() -> None:
        now = time.time()
        batch = b.take(now)
        mark = b.mark(batch)
        b.ack(batch, mark, backend._store.write(batch, b.worker, now, mark).confirmed)

    other.cells[:] = [5.0]
    other.changed()  # as the record path does after a write
    flush_b()
    assert backend.flush_sync()
    c.remove("a")  # worker A
    assert backend.flush_sync()
    back_at = time.time()
    other.cells[BASE] += 2.0  # worker B goes on
    other.changed()
    flush_b()
    assert registry.get_sample_value("hits_total", {"k": "a"}) == 2.0
    created = redis_server.client().hget(f"{{{key_prefix}|hits}}:c", '["a"]')
    assert created is not None and float(created) >= back_at, created
