"""Redis loses what a worker sent: the worker notices and sends its state again.

Redis restarted without persistence, a cluster slot lost in a failover, or a
worker pruned as dead while it was only stopped: gauges, infos and enums that
were set once would stay missing until they change, and counters would show
``_created 0``. Each worker's mark in
``{prefix}:marks`` (the batch number of its last confirmed write) is found
missing or old, or a metric's own batch numbers are, and the buffer answers
by sending every gauge-like state again (in the same flush), and every
counter and histogram series again from 0 with a new ``_created`` (an
ordinary counter reset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from redis_server import RedisServer
from tcp_proxy import DroppingProxy

from apytheus import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info
from apytheus.backends._buffer import DeltaBuffer
from apytheus.backends._redis_retire import prune_dead
from apytheus.backends._series import ScalarSeries
from apytheus.backends.redis import RedisBackend


class Metrics:
    """One metric of every kind, recorded once before the loss."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.started = Gauge("started_at", "Start", registry=registry)
        self.temperature = Gauge("temp", "T", ["room"], registry=registry)
        self.build = Info("build", "Build", registry=registry)
        self.state = Enum("state", "State", states=["idle", "busy"], registry=registry)
        self.jobs = Counter("jobs", "Jobs", registry=registry)
        self.latency = Histogram("lat", "Latency", buckets=[1], registry=registry)
        self.started.set(1700000000)
        self.temperature.labels(room="a").set(21.5)
        self.temperature.labels(room="b").set(19)
        self.build.info({"version": "1.2"})
        self.state.state("busy")
        self.jobs.inc(5)
        self.latency.observe(0.5)

    def get(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def gauge_likes(self) -> tuple[float | None, ...]:
        return (
            self.get("started_at"),
            self.get("temp", {"room": "a"}),
            self.get("temp", {"room": "b"}),
            self.get("build_info", {"version": "1.2"}),
            self.get("state", {"state": "busy"}),
        )


EXPECTED = (1700000000.0, 21.5, 19.0, 1.0, 1.0)


def test_redis_restarted_empty_gets_every_state_back_in_the_next_flush(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = redis_server_factory()  # no persistence: a restart comes back empty
    backend = make_redis_backend(server)
    metrics = Metrics(registry)
    assert backend.flush_sync()
    assert metrics.gauge_likes() == EXPECTED
    assert metrics.get("jobs_total") == 5.0
    server.kill()
    server.start()
    assert not server.client().exists(f"{{{key_prefix}|temp}}:v")
    lost_at = time.time()
    metrics.jobs.inc(2)  # counted from the reset on
    with caplog.at_level(logging.WARNING, logger="apytheus"):
        # a scrape flushes once: the loss is found, and the state sent again, in that flush
        assert metrics.gauge_likes() == EXPECTED
    assert "Redis lost (or rolled back) what worker" in caplog.text
    assert backend.resends == 1  # apytheus_redis_resends_total (see the health test)
    assert metrics.get("jobs_total") == 2.0  # not 7: an ordinary counter reset
    assert metrics.get("lat_count") == 0.0  # the series is there again, from 0
    assert metrics.get("lat_bucket", {"le": "+Inf"}) == 0.0
    # _created tells when the count started again (it read 0.0 before the fix)
    created = [float(v) for v in server.client().hgetall(f"{{{key_prefix}|jobs}}:c").values()]
    assert len(created) == 1 and created[0] >= lost_at, created
    # the next flushes send only changes again
    before = server.client().info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    assert backend.flush_sync()
    after = server.client().info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    assert after == before + 1  # nothing changed: only the heartbeat and mark script


def test_a_metric_whose_keys_were_lost_is_sent_again_when_it_changes(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """One metric's keys gone (as with a cluster slot lost in a failover): the flush
    script finds no batch number of this worker there, and the metric's other series
    come back with the change that revealed it."""
    backend = make_redis_backend(redis_server)
    metrics = Metrics(registry)
    assert backend.flush_sync()
    client = redis_server.client()
    lost = [f"{{{key_prefix}|temp}}:{part}" for part in ("seq", "v", "t")]
    assert client.delete(*lost) == 3
    metrics.temperature.labels(room="b").set(18)
    assert metrics.get("temp", {"room": "a"}) == 21.5  # back, though it did not change
    assert metrics.get("temp", {"room": "b"}) == 18.0
    assert metrics.gauge_likes()[3:] == EXPECTED[3:]  # the other metrics were not touched


def test_lost_keys_are_still_noticed_when_the_same_flush_failed_for_another_metric(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """The flush that reveals one metric's lost keys fails for another (an ACL, an OOM):
    the retry finds that metric applied already, yet its series must still come back."""
    admin = redis_server.client()
    user = f"u{key_prefix.replace('-', '')}"
    admin.acl_setuser(user, enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all"])
    try:
        host_port = redis_server.url.split("//", 1)[1]
        backend = make_redis_backend(redis_server, url=f"redis://{user}:pw@{host_port}")
        temperature = Gauge("temp", "T", ["room"], registry=registry)
        other = Counter("other", "O", registry=registry)
        temperature.labels(room="a").set(21.5)
        temperature.labels(room="b").set(19)
        other.inc()
        assert backend.flush_sync()
        assert admin.delete(*[f"{{{key_prefix}|temp}}:{p}" for p in ("seq", "v", "t")]) == 3
        # the other metric's keys become unwritable: its script fails, the batch is retried
        admin.acl_setuser(
            user, reset_keys=True, keys=[f"{{{key_prefix}|temp}}*", f"{{{key_prefix}}}:*"]
        )
        temperature.labels(room="b").set(18)
        other.inc()
        assert not backend.flush_sync()
        admin.acl_setuser(user, keys=["*"])
        assert backend.flush_sync()
        assert registry.get_sample_value("temp", {"room": "a"}) == 21.5  # sent again
        assert registry.get_sample_value("temp", {"room": "b"}) == 18.0
        assert registry.get_sample_value("other_total") == 2.0
    finally:
        admin.acl_deluser(user)


def test_a_worker_pruned_as_dead_while_stopped_sends_its_state_again(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """A worker stopped (SIGSTOP, a debugger) for longer than ``worker_retention``: another
    worker prunes its gauges, batch numbers and mark. When it runs again, its mark is
    missing, and it sends everything it has again."""
    backend = make_redis_backend(redis_server)
    metrics = Metrics(registry)
    assert backend.flush_sync()
    # what another worker's prune does once this one's heartbeat is older than the retention
    pruned = prune_dead(backend._store, time.time() + 10**6)
    assert pruned == [backend.worker]
    assert metrics.gauge_likes() == EXPECTED
    assert metrics.get("jobs_total") == 5.0  # totals are not per worker: pruning keeps them


def test_a_new_worker_is_not_taken_for_a_lost_one(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """First flushes: no batch number and no heartbeat yet is normal, not a loss."""
    backend = make_redis_backend(redis_server)
    with caplog.at_level(logging.WARNING, logger="apytheus"):
        metrics = Metrics(registry)
        assert backend.flush_sync()
        Gauge("later", "Created after the first flush", registry=registry).set(1)
        assert backend.flush_sync()
        assert metrics.gauge_likes() == EXPECTED
    assert "Redis lost" not in caplog.text


def test_redis_back_from_an_older_snapshot_is_noticed(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """Redis restarted from an RDB snapshot (or an AOF that missed its last second): the
    worker and its batch numbers are there, but older. Its mark tells."""
    server = redis_server_factory()
    backend = make_redis_backend(server)
    g = Gauge("g", "G", registry=registry)
    g.set(1)
    assert backend.flush_sync()
    server.client().save()  # a snapshot, as `save 60 1000` takes one
    g.set(2)
    assert backend.flush_sync()
    server.kill()
    server.start()  # loads the snapshot: g is 1 there
    assert server.client().hget(f"{{{backend.key_prefix}|g}}:v", f"[]\t{backend.worker}") == b"1.0"
    assert registry.get_sample_value("g") == 2.0


def test_a_lost_reply_does_not_hide_the_loss(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """Redis restarted empty, and the reply to the first write after it is lost: that write
    was applied, yet the mark it checked stays wrong, so the retry still notices."""
    server = redis_server_factory()
    proxy = DroppingProxy(server.port)
    try:
        backend = make_redis_backend(proxy.port)
        a = Gauge("a", "A", registry=registry)
        b = Gauge("b", "B", registry=registry)
        a.set(1)
        b.set(2)
        assert backend.flush_sync()
        server.kill()
        server.start()  # empty
        a.set(3)  # only `a` is in the next batch
        backend._store.client.connection_pool.disconnect()  # no link to the dead server
        proxy.drop_after(b"EVALSHA")
        assert not backend.flush_sync()  # applied, but the reply never came
        assert proxy.dropped.is_set()
        assert registry.get_sample_value("a") == 3.0
        assert registry.get_sample_value("b") == 2.0
    finally:
        proxy.close()


def test_a_backend_that_took_over_the_worker_notices_a_loss(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    server = redis_server_factory()
    first = make_redis_backend(server)
    g = Gauge("g", "G", registry=registry)
    g.set(7)
    assert first.flush_sync()
    second = make_redis_backend(server)  # same store: it continues the first one's worker
    assert second.worker == first.worker
    server.kill()
    server.start()  # empty
    assert registry.get_sample_value("g") == 7.0


def test_a_value_sent_again_keeps_its_time_for_mostrecent(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """Worker A sets 1, worker B sets 2 later; A is pruned while stopped and sends its 1
    again when it runs: B's later value must still win."""
    backend = make_redis_backend(redis_server)
    g = Gauge("leader", "L", registry=registry, multiprocess_mode="mostrecent")
    g.set(1)
    assert backend.flush_sync()
    other_worker_sets(backend, g, 2, later_than(backend.last_flush))  # worker B, later
    later_than(time.time())  # A's resend comes later still: only its first time can lose
    # A stopped for longer than worker_retention: B prunes it
    redis_server.client().zadd(backend._store.workers_key, {backend.worker: 1.0})
    assert prune_dead(backend._store, 100.0) == [backend.worker]
    assert registry.get_sample_value("leader") == 2.0  # A's flush sends its 1 again
    assert (
        redis_server.client().hget(f"{{{backend.key_prefix}|leader}}:v", f"[]\t{backend.worker}")
        == b"1.0"
    )


def other_worker_sets(backend: RedisBackend, gauge: Gauge, value: float, at: float) -> None:
    """What another process' flush does: its own buffer, its own value, written at ``at``."""
    series = ScalarSeries(gauge._series.labels)
    series.set(value)
    buffer = DeltaBuffer(f"other-{value}")
    buffer.track(gauge._family.spec, series)
    batch = buffer.take(at)
    mark = buffer.mark(batch)
    buffer.ack(batch, mark, backend._store.write(batch, buffer.worker, at, mark).confirmed)


def test_setting_the_same_value_again_is_the_most_recent_write(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """Under `mostrecent` the last set() wins, even one that does not change this
    worker's value (it is sent again, with a new time)."""
    backend = make_redis_backend(redis_server)
    g = Gauge("leader", "L", registry=registry, multiprocess_mode="mostrecent")
    g.set(0)
    assert backend.flush_sync()
    other_worker_sets(backend, g, 2, later_than(backend.last_flush))
    assert registry.get_sample_value("leader") == 2.0
    later_than(time.time())
    g.set(0)  # later still: this worker's 0 wins again
    assert registry.get_sample_value("leader") == 0.0


def later_than(moment: float) -> float:
    """The clock's first reading after ``moment`` (a bounded wait for its next tick)."""
    deadline = time.monotonic() + 1
    while (now := time.time()) <= moment:
        assert time.monotonic() < deadline, "the clock does not move"
    return now


def test_a_backend_that_took_over_keeps_the_times_of_what_it_sends_again(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    first = make_redis_backend(redis_server)
    g = Gauge("leader", "L", registry=registry, multiprocess_mode="mostrecent")
    other_worker_sets(first, g, 2, time.time() - 1000)  # long ago
    g.set(1)
    assert first.flush_sync()
    assert registry.get_sample_value("leader") == 1.0
    second = make_redis_backend(redis_server)  # takes over the worker
    # this worker is pruned while stopped; it sends its 1 again, with its first time
    redis_server.client().zadd(second._store.workers_key, {second.worker: 1.0})
    assert prune_dead(second._store, 100.0) == [second.worker]
    assert registry.get_sample_value("leader") == 1.0  # not the other's older 2


def test_one_metrics_keys_rolled_back_are_noticed_when_it_changes(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """As when one Redis Cluster node comes back from an older snapshot: the worker's mark
    (on another node) is fine, but the metric's keys hold an older batch number of it."""
    backend = make_redis_backend(redis_server)
    g = Gauge("g", "G", ["k"], registry=registry)
    g.labels(k="a").set(1)
    g.labels(k="b").set(1)
    assert backend.flush_sync()
    client = redis_server.client()
    keys = [k for k in backend._store.keys(g._family.spec) if client.exists(k)]
    snapshot = {k: client.dump(k) for k in keys}
    g.labels(k="b").set(2)
    assert backend.flush_sync()
    for key, dumped in snapshot.items():  # the node restarts from its snapshot
        assert dumped is not None  # the key existed
        client.restore(key, 0, dumped, replace=True)
    g.labels(k="a").set(3)  # a change in that metric reveals it
    assert registry.get_sample_value("g", {"k": "a"}) == 3.0
    assert registry.get_sample_value("g", {"k": "b"}) == 2.0


def test_a_backend_that_took_over_notices_lost_metric_keys(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    first = make_redis_backend(redis_server)
    g = Gauge("g", "G", ["k"], registry=registry)
    g.labels(k="a").set(1)
    g.labels(k="b").set(2)
    assert first.flush_sync()
    second = make_redis_backend(redis_server)
    redis_server.client().delete(*second._store.keys(g._family.spec))  # a lost cluster slot
    g.labels(k="a").set(3)
    assert registry.get_sample_value("g", {"k": "b"}) == 2.0


def test_no_loss_is_reported_for_a_worker_that_starts_empty(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_redis_backend(redis_server)
    with caplog.at_level(logging.WARNING, logger="apytheus"):
        assert backend.flush_sync()  # nothing to send: only the heartbeat and the mark
        assert backend.flush_sync()
        Gauge("g", "G", registry=registry).set(1)
        assert backend.flush_sync()
        Counter("c", "C", registry=registry).inc()
        assert backend.flush_sync()
    assert "Redis lost" not in caplog.text


def test_a_takeover_keeps_the_times_of_values_that_did_not_change(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    first = make_redis_backend(redis_server)
    g = Gauge("leader", "L", registry=registry, multiprocess_mode="mostrecent")
    g.set(1)
    assert first.flush_sync()
    other_worker_sets(first, g, 2, later_than(first.last_flush))
    assert registry.get_sample_value("leader") == 2.0
    later_than(time.time())
    second = make_redis_backend(redis_server)  # takes over; nothing was written since
    assert second.worker == first.worker
    assert second.flush_sync()
    assert registry.get_sample_value("leader") == 2.0  # the other's later write still wins


def test_after_a_loss_everything_is_sent_again_once(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    redis_server = redis_server_factory()  # its own: the test empties it
    backend = make_redis_backend(redis_server)
    a = Counter("a", "A", registry=registry)
    b = Gauge("b", "B", registry=registry)
    a.inc()
    b.set(3)
    assert backend.flush_sync()
    redis_server.client().flushdb()  # Redis lost everything
    a.inc()  # only `a` changes
    assert backend.flush_sync()  # notices, sends everything again (same flush)
    # nothing changed since: nothing more to send
    again = backend._buffer.take(time.time())
    assert again is None, [(o.spec.name, o.incr, o.sets, o.created) for o in again.ops]


def test_where_the_last_write_wins_nothing_written_means_nothing_sent(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """Info, Enum, a set_function gauge and an inc-only gauge: sent once, not every flush."""
    backend = make_redis_backend(redis_server)
    e = Enum("st", "S", states=["a", "b"], registry=registry)
    i = Info("bi", "B", registry=registry)
    f = Gauge("fn", "F", registry=registry, multiprocess_mode="mostrecent")
    n = Gauge("incs", "I", ["k"], registry=registry, multiprocess_mode="livemostrecent")
    e.state("b")
    i.info({"v": "1"})
    f.set_function(lambda: 7)
    n.labels(k="x").inc(2)
    assert backend.flush_sync()
    assert backend.flush_sync()
    assert backend._buffer.take(time.time()) is None


def test_the_health_metrics_count_the_resends(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    default_registry: CollectorRegistry,
) -> None:
    server = redis_server_factory()
    backend = make_redis_backend(server)
    Gauge("g", "G").set(1)
    resends = {"worker": backend.worker}
    assert default_registry.get_sample_value("apytheus_redis_resends_total", resends) == 0.0
    server.kill()
    server.start()  # empty
    assert default_registry.get_sample_value("g") == 1.0  # noticed and sent again
    assert default_registry.get_sample_value("apytheus_redis_resends_total", resends) == 1.0
