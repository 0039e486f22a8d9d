"""Workers: ids, heartbeats, lifetimes; a switch that continues one, a fork that starts one."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest
from conftest import wait_for
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Gauge
from apytheus.backends import ScalarSeries, get_backend
from apytheus.backends._redis_retire import prune_dead
from apytheus.backends.redis import RedisBackend
from apytheus.exceptions import LabelValidationException


def test_worker_ids_are_unique_and_batch_numbers_grow_across_lifetimes(
    redis_server: RedisServer, make_redis_backend: Callable[..., RedisBackend]
) -> None:
    first = make_redis_backend(redis_server)
    second = RedisBackend({"url": redis_server.url})
    try:
        assert first.worker != second.worker
        assert len(first.worker.rsplit(":", 1)[1]) == 12
        assert second._buffer.seq >= first._buffer.seq  # time-based start
    finally:
        second.close(flush=False)


def test_the_writers_heartbeat_ttl_decides_when_it_is_dead(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    key_prefix: str,
) -> None:
    reader = make_redis_backend(redis_server)  # default ttl (10 s)
    writer = RedisBackend(
        {
            "url": redis_server.url,
            "key_prefix": key_prefix,
            "flush_interval": 0.2,
            "heartbeat_ttl": 0.5,
        }
    )
    g = Gauge("level", "L", registry=None, multiprocess_mode="livesum")
    g.set(4)
    writer.attach(g._family.spec, g._series)
    assert writer.flush_sync()
    writer.close(flush=False)
    spec = g._family.spec

    def total() -> float:
        found = reader.collect([spec])[spec]
        return sum(s.value() for s in found if isinstance(s, ScalarSeries))

    assert total() == 4.0
    wait_for(lambda: total() == 0.0, timeout=10, what="the writer's 0.5 s heartbeat to expire")


def test_all_mode_gauges_reserve_the_worker_label(registry: CollectorRegistry) -> None:
    with pytest.raises(LabelValidationException, match="reserved"):
        Gauge("g", "G", ["worker"], registry=registry, multiprocess_mode="all")
    Gauge("h", "H", ["worker"], registry=registry)  # other modes add no such label


def test_what_a_long_dead_worker_left_is_pruned_after_the_retention(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    g = Gauge("level", "L", registry=registry)  # non-live mode: a dead worker's value counts
    dead = RedisBackend(
        {
            "url": redis_server.url,
            "key_prefix": key_prefix,
            "heartbeat_ttl": 0.2,
            "flush_interval": 0.05,
        }
    )
    series = Gauge("level", "L", registry=None)
    series.set(5)
    dead.attach(g._family.spec, series._series)
    assert dead.flush_sync()
    dead_worker = dead.worker
    dead.close(flush=False)
    backend = make_redis_backend(redis_server, worker_retention=0.3)
    assert registry.get_sample_value("level") == 5.0
    with redis_server.client() as client:

        def pruned() -> bool:
            backend.flush_sync()
            seq = client.hkeys(f"{{{key_prefix}|level}}:seq")
            workers = client.zrange(f"{{{key_prefix}}}:workers", 0, -1)
            return dead_worker.encode() not in seq + workers

        wait_for(pruned, timeout=15, what="the dead worker to be pruned")
    assert registry.get_sample_value("level") == 0.0  # only this worker's untouched 0


def test_pruning_costs_what_the_dead_worker_left_not_what_redis_holds(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """A dead worker with 3 gauge series, next to a live one with 2,000: pruning deletes the
    dead one's 3 values and times, and lists no hash (Redis' own command counts say so)."""
    g = Gauge("level", "L", ["n"], registry=registry)
    dead = RedisBackend(
        {
            "url": redis_server.url,
            "key_prefix": key_prefix,
            "heartbeat_ttl": 0.2,
            "flush_interval": 0.1,
        }
    )
    for n in range(3):
        series = Gauge("level", "L", ["n"], registry=None)
        series.labels(n=str(n)).set(n + 1)
        dead.attach(g._family.spec, series.labels(n=str(n))._series)
    assert dead.flush_sync()
    dead_worker = dead.worker
    dead.close(flush=False)  # as if killed: nothing removed
    backend = make_redis_backend(redis_server, heartbeat_ttl=7200)
    for n in range(2_000):
        g.labels(n=str(n)).set(1)
    assert backend.flush_sync()
    with redis_server.client() as client:
        wait_for(
            lambda: client.zscore(f"{{{key_prefix}}}:workers", dead_worker) < time.time(),
            what="the dead worker's heartbeat to expire",
        )
        before = client.info("commandstats")
        gone = prune_dead(backend._store, time.time())
        after = client.info("commandstats")
        assert gone == [dead_worker]

        def calls(name: str) -> int:
            return int(after.get(f"cmdstat_{name}", {}).get("calls", 0)) - int(
                before.get(f"cmdstat_{name}", {}).get("calls", 0)
            )

        assert calls("hkeys") == 0 and calls("hscan") == 0  # no hash listed...
        assert calls("hgetall") == 1  # ... but the dead worker's list of the metrics it wrote
        # its batch number of the one metric it wrote; its 3 values and their times; its mark
        assert calls("hdel") == 1 + 3 * 2 + 1
        assert client.hlen(f"{{{key_prefix}|level}}:v") == 2_000  # the live worker's


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_while_another_thread_holds_the_buffer_lock_does_not_hang_the_child(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(redis_server)
    Counter("jobs", "Jobs", registry=registry).inc()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with backend._buffer._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            backend._buffer.take(0)  # would block forever on the parent's lock
            code = 0
        finally:
            os._exit(code)
    release.set()
    holder.join()
    wait_for(lambda: os.waitpid(pid, os.WNOHANG) != (0, 0), timeout=10, what="the child")


def test_switching_to_a_backend_on_the_same_store_neither_loses_nor_doubles(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    first = make_redis_backend(redis_server)
    c = Counter("jobs", "Jobs", registry=registry)
    c.inc(5)
    assert first.flush_sync()
    c.inc(2)
    first._buffer.take(0)  # a batch taken (pending) but not yet sent at the switch
    second = make_redis_backend(redis_server)
    assert get_backend() is second and first._closed
    c.inc(1)
    assert second.flush_sync()
    assert registry.get_sample_value("jobs_total") == 8.0
