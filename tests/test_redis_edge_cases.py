"""Edge cases of the Redis backend found in review, each against a real redis-server."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable

import pytest
from conftest import wait_for
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Gauge, Histogram
from apytheus.backends import get_backend
from apytheus.backends.redis import RedisBackend
from apytheus.exceptions import LabelValidationException


@pytest.fixture
def own_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory()


def test_same_metric_name_in_two_registries_sends_both_deltas(
    redis_server: RedisServer, make_redis_backend: Callable[..., RedisBackend]
) -> None:
    backend = make_redis_backend(redis_server)
    a, b = CollectorRegistry(), CollectorRegistry()
    Counter("jobs", "Jobs", registry=a).inc(1)
    Counter("jobs", "Jobs", registry=b).inc(10)
    assert backend.flush_sync()
    assert a.get_sample_value("jobs_total") == 11.0  # one store: the same series


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


def test_a_key_of_another_type_drops_only_that_metric_once(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_redis_backend(redis_server)
    with redis_server.client() as client:
        client.set(f"{{{key_prefix}|broken}}:c", "a string, not a hash")
    broken = Counter("broken", "B", registry=registry)
    fine = Counter("fine", "F", registry=registry)
    broken.inc()
    fine.inc(7)
    with caplog.at_level(logging.ERROR, logger="apytheus"):
        assert backend.flush_sync()
    assert "refused the updates of ['broken'] for good" in caplog.text
    assert backend.dropped_updates == 1
    fine.inc()
    for _ in range(3):
        assert backend.flush_sync()
    with caplog.at_level(logging.CRITICAL, logger="apytheus"):
        assert registry.get_sample_value("fine_total") == 8.0  # the broken one is left out
    with redis_server.client() as client:  # applied at most once, never repeated
        assert client.hget(f"{{{key_prefix}|broken}}:v", "[]") in (None, b"1")


def test_a_label_value_that_is_not_unicode_is_refused_at_the_call_site(
    registry: CollectorRegistry,
) -> None:
    c = Counter("files", "F", ["path"], registry=registry)
    with pytest.raises(LabelValidationException, match="not valid Unicode"):
        c.labels(path="/files/\udcff")


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


def test_a_set_function_that_raises_does_not_lose_other_deltas(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_redis_backend(redis_server)
    broken = [True]

    def level() -> float:
        if broken[0]:
            raise RuntimeError("sensor offline")
        return 3.0

    Gauge("level", "L", registry=registry).set_function(level)
    c = Counter("jobs", "Jobs", registry=registry)
    c.inc(5)
    with caplog.at_level(logging.CRITICAL, logger="apytheus"):
        assert backend.flush_sync()
        assert backend.flush_sync()
    broken[0] = False
    assert backend.flush_sync()
    assert registry.get_sample_value("jobs_total") == 5.0


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


def test_the_flusher_survives_a_very_long_outage_and_errors() -> None:
    from apytheus.backends._flusher import Flusher

    def boom() -> bool:
        raise RuntimeError("unexpected")

    flusher = Flusher(boom, interval=1.0)
    flusher.failures = 5000  # days of failures
    assert 0 < flusher.delay() <= 30
    flusher._once()  # logs, never raises
    assert flusher.failures == 5001


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


def test_a_cluster_backend_connects_on_first_use_not_when_created() -> None:
    backend = RedisBackend({"url": "redis://127.0.0.1:1/0", "cluster": True})
    backend.close(flush=False)


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


def test_an_infinite_counter_is_exposed_as_inf_not_nan(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(redis_server)
    c = Counter("c", "C", registry=registry)
    c.inc(math.inf)
    assert backend.flush_sync()
    c.inc()
    assert backend.flush_sync()
    assert registry.get_sample_value("c_total") == math.inf


@pytest.mark.parametrize(
    "amounts",
    [
        [1.2345678901234567e-10],  # HINCRBYFLOAT kept 8 digits of it
        [5e-324, 5e-324],  # and turned these into 0
        [1e-20, 1.0, -1.0],
        [0.1, 0.2],  # 0.30000000000000004 in doubles, as in one process
        [1e308, 1e308],  # overflows to +Inf
        [math.inf, -math.inf],  # NaN
    ],
)
def test_totals_in_redis_are_the_doubles_one_process_has(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    amounts: list[float],
) -> None:
    """Deltas are added in doubles and stored with 17 significant digits: a total read
    from Redis is the very double a single process would expose."""
    backend = make_redis_backend(redis_server)
    h = Histogram("h", "H", buckets=[1.0], registry=registry)  # its sum takes any float
    expected = 0.0
    for amount in amounts:
        h.observe(amount)
        expected += amount
        assert backend.flush_sync()  # one delta per flush: Redis adds them up
    got = registry.get_sample_value("h_sum")
    assert got == expected or (math.isnan(expected) and got is not None and math.isnan(got))
    assert registry.get_sample_value("h_count") == len(amounts)


def test_a_total_that_is_not_a_number_drops_that_metric_only(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_redis_backend(redis_server)
    with redis_server.client() as client:
        client.hset(f"{{{key_prefix}|broken}}:v", "[]", "not a number")
    Counter("broken", "B", registry=registry).inc()
    fine = Counter("fine", "F", registry=registry)
    fine.inc(3)
    with caplog.at_level(logging.ERROR, logger="apytheus"):
        assert backend.flush_sync()
    assert "refused the updates of ['broken'] for good" in caplog.text
    assert backend.dropped_updates == 1
    with redis_server.client() as client:
        assert client.hget(f"{{{key_prefix}|fine}}:v", "[]") == b"3"
        assert client.hget(f"{{{key_prefix}|broken}}:v", "[]") == b"not a number"


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
        return sum(s.value() for s in found)

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


def test_an_infinite_total_stays_infinite_whatever_another_worker_adds(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """Another worker stored a +Inf histogram sum; this one adds -1: +Inf it stays (the
    old script took the infinity's sign from the delta)."""
    backend = make_redis_backend(redis_server)
    h = Histogram("h", "H", buckets=[1.0], registry=registry)
    with redis_server.client() as client:
        client.hset(f"{{{key_prefix}|h}}:v", "[]\tsum", "+Inf")
    h.observe(-1)
    assert backend.flush_sync()
    assert registry.get_sample_value("h_sum") == math.inf


def test_a_series_removed_in_one_registry_is_written_again_by_another_that_has_it(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
) -> None:
    """Same-named metrics share their keys: a removal deletes the series for both, and
    the registry that still has it writes it again right after the delete."""
    backend = make_redis_backend(redis_server)
    one, two = CollectorRegistry(), CollectorRegistry()
    a = Gauge("temp", "T", ["room"], registry=one)
    b = Gauge("temp", "T", ["room"], registry=two)
    a.labels(room="x").set(1)
    b.labels(room="y").set(5)
    b.labels(room="x").set(5)
    assert backend.flush_sync()
    a.remove("x")  # registry one is done with x; registry two still sets it
    assert backend.flush_sync()
    b.labels(room="x").set(5)
    for _ in range(3):
        assert backend.flush_sync()
    assert two.get_sample_value("temp", {"room": "x"}) == 5.0


def test_a_takeover_with_two_registries_sharing_a_name_counts_once(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
) -> None:
    first = make_redis_backend(redis_server)
    one, two = CollectorRegistry(), CollectorRegistry()
    a = Counter("jobs", "J", registry=one)
    b = Counter("jobs", "J", registry=two)
    a.inc(5)
    b.inc(3)
    assert first.flush_sync()
    assert one.get_sample_value("jobs_total") == 8.0
    second = make_redis_backend(redis_server)  # same store: takes over the worker
    assert second.flush_sync()
    assert one.get_sample_value("jobs_total") == 8.0


def test_registries_with_different_prefixes_do_not_share_values(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
) -> None:
    make_redis_backend(redis_server)
    one, two = CollectorRegistry(prefix="app1"), CollectorRegistry(prefix="app2")
    a = Counter("requests", "R", registry=one)
    b = Counter("requests", "R", registry=two)
    a.inc(1)
    b.inc(2)
    assert one.get_sample_value("app1_requests_total") == 1.0
    assert two.get_sample_value("app2_requests_total") == 2.0


def test_a_histogram_removed_in_one_registry_comes_back_whole_in_another(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
) -> None:
    """Two registries, one metric name, other buckets: after a removal through one, the
    other's series is written again from 0 (a reset), never half of it."""
    backend = make_redis_backend(redis_server)
    one, two = CollectorRegistry(), CollectorRegistry()
    a = Histogram("lat", "L", ["k"], buckets=[1], registry=one)
    b = Histogram("lat", "L", ["k"], buckets=[5], registry=two)
    a.labels(k="x").observe(0.5)
    b.labels(k="x").observe(3)
    assert backend.flush_sync()
    a.remove("x")
    assert backend.flush_sync()
    get = two.get_sample_value
    x = {"k": "x"}
    assert (get("lat_count", x), get("lat_sum", x), get("lat_bucket", {**x, "le": "5.0"})) == (
        0.0,
        0.0,
        0.0,
    )
