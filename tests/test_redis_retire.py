"""What a worker that stops cleanly removes from Redis, what it keeps a while, and why.

A clean stop (`RedisBackend.close`) removes the worker's gauge values, its mark and its
liveness at once; its batch numbers stay until pruning, a little later, so that a copy
of one of its batches that a stalled connection delivers late is still skipped.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator

import pytest
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Enum, Gauge, Info
from apytheus.backends import InfoSeries, ScalarSeries
from apytheus.backends._redis_client import Connector
from apytheus.backends._redis_store import RedisStore
from apytheus.backends.redis import RedisBackend
from apytheus.exceptions import BackendUnavailable


@pytest.fixture
def make_worker(
    redis_server: RedisServer, key_prefix: str
) -> Iterator[Callable[..., RedisBackend]]:
    """Backends of this process that act as separate workers (each its own worker id)."""
    made: list[RedisBackend] = []

    def make(**extra: object) -> RedisBackend:
        config = {"url": redis_server.url, "key_prefix": key_prefix, "flush_interval": 3600}
        backend = RedisBackend({**config, **extra})
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close(flush=False)


def keys_of(server: RedisServer, key_prefix: str, worker: str) -> dict[str, object]:
    client = server.client()
    try:
        return {
            "seq": client.hget(f"{{{key_prefix}|jobs}}:seq", worker),
            "score": client.zscore(f"{{{key_prefix}}}:workers", worker),
            "mark": client.hget(f"{{{key_prefix}}}:marks", worker),
        }
    finally:
        client.close()


def test_a_late_copy_of_a_batch_after_a_clean_stop_is_still_skipped(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    backend = make_redis_backend(redis_server)
    jobs = Counter("jobs", "Jobs", registry=registry)
    jobs.inc(5)
    buffer, store, worker = backend._buffer, backend._store, backend.worker
    with backend._flush_lock:
        now = time.time()
        batch = buffer.take(now)
        assert batch is not None
        mark = buffer.mark(batch)
        written = store.write(batch, worker, now, mark)
        buffer.ack(batch, mark, written.confirmed)
    backend.close()  # a clean stop
    found = keys_of(redis_server, key_prefix, worker)
    assert found["mark"] is None  # gone at once
    assert isinstance(found["score"], float) and found["score"] < time.time()  # not live
    assert found["seq"] is not None  # kept until pruning
    # the copy a stalled connection held arrives now, on a connection of its own
    late = RedisStore(Connector({"url": redis_server.url}), key_prefix, 10.0)
    try:
        late.write(batch, worker, now, mark)
        counted = late.client.hget(f"{{{key_prefix}|jobs}}:v", "[]")
    finally:
        late.close()
    assert counted == b"5"  # not 10


def test_a_clean_stop_keeps_the_newest_enum_info_and_mostrecent_value(
    make_worker: Callable[..., RedisBackend], registry: CollectorRegistry
) -> None:
    """An older worker stays; a newer one sets other values and stops: its values stay (a
    worker's exit never brings an older value back), also once the older one stops."""
    phase = Enum("phase", "P", states=["a", "b"], registry=registry)
    build = Info("build", "B", registry=registry)
    level = Gauge("level", "L", registry=registry, multiprocess_mode="mostrecent")
    older, newer = make_worker(), make_worker()
    scraper = make_worker()
    for backend, state, version, value in ((older, "a", "1", 1.0), (newer, "b", "2", 2.0)):
        for metric, make in (
            (phase, lambda: Enum("phase", "P", states=["a", "b"], registry=None)),
            (build, lambda: Info("build", "B", registry=None)),
            (level, lambda: Gauge("level", "L", registry=None, multiprocess_mode="mostrecent")),
        ):
            mine = make()
            if isinstance(mine, Enum):
                mine.state(state)
            elif isinstance(mine, Info):
                mine.info({"version": version})
            else:
                mine.set(value)
            backend.attach(metric._family.spec, mine._series)
        assert backend.flush_sync()
        time.sleep(0.01)  # the newer worker's writes are later, by the clock they carry

    def shown() -> tuple[object, ...]:
        found = scraper.collect([phase._family.spec, build._family.spec, level._family.spec])
        (state,) = found[phase._family.spec]
        (info,) = found[build._family.spec]
        (gauge,) = found[level._family.spec]
        assert isinstance(state, ScalarSeries) and isinstance(gauge, ScalarSeries)
        assert isinstance(info, InfoSeries)
        return state.value(), dict(info.info), gauge.value()

    newest = (1.0, {"version": "2"}, 2.0)  # the state's index: "b"
    assert shown() == newest
    newer.close()
    assert shown() == newest
    older.close()
    assert shown() == newest


def test_a_clean_stop_removes_the_values_of_metrics_no_longer_in_memory(
    make_worker: Callable[..., RedisBackend], redis_server: RedisServer, key_prefix: str
) -> None:
    """A metric of a registry the app dropped (its objects collected) was written by the
    worker: its values go at the stop too, not never."""
    worker = make_worker()
    gauge = Gauge("temporary", "T", registry=CollectorRegistry())
    series = Gauge("temporary", "T", registry=None)
    series.set(7)
    worker.attach(gauge._family.spec, series._series)
    assert worker.flush_sync()
    del gauge, series
    gc.collect()
    assert not worker._buffer.specs()
    worker.close()
    with redis_server.client() as client:
        assert client.hlen(f"{{{key_prefix}|temporary}}:v") == 0
        assert not client.exists(f"{{{key_prefix}|temporary}}:o:{worker.worker}")


def test_a_closed_backend_flushes_nothing_more(
    make_worker: Callable[..., RedisBackend],
    redis_server: RedisServer,
    key_prefix: str,
) -> None:
    """A flusher task or a scrape that runs after the stop does not bring the worker back."""
    worker = make_worker()
    gauge = Gauge("level", "L", registry=CollectorRegistry())
    worker.attach(gauge._family.spec, Gauge("level", "L", registry=None)._series)
    assert worker.flush_sync()
    worker.close()
    assert not worker.flush_sync()
    with pytest.raises(BackendUnavailable, match="closed"):
        worker.collect([gauge._family.spec])
    with redis_server.client() as client:
        score = client.zscore(f"{{{key_prefix}}}:workers", worker.worker)
        assert score is not None and score < time.time()
        assert client.hlen(f"{{{key_prefix}|level}}:v") == 0


def test_removed_gauge_series_leave_a_workers_owned_set(
    make_redis_backend: Callable[..., RedisBackend],
    redis_server: RedisServer,
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    backend = make_redis_backend(redis_server)
    inflight = Gauge("inflight", "I", ["job"], registry=registry)
    for round_ in range(4):
        for i in range(50):
            inflight.labels(job=f"{round_}-{i}").set(1)
        assert backend.flush_sync()
        for i in range(50):
            inflight.remove(f"{round_}-{i}")
        assert backend.flush_sync()
    with redis_server.client() as client:
        assert client.scard(f"{{{key_prefix}|inflight}}:o:{backend.worker}") == 0
        assert client.hlen(f"{{{key_prefix}|inflight}}:v") == 0
