"""The Redis backend against a real redis-server: values, flushing, exactly-once, lifespan."""

from __future__ import annotations

import gc
import math
import re
import threading
import time
from collections.abc import Callable, Sequence

import anyio
import pytest
import redis
from redis_server import RedisServer

import apytheus
from apytheus import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    agenerate_metrics,
    generate_metrics,
)
from apytheus.backends import InProcessBackend, ScalarSeries, Series, load_backend
from apytheus.backends.redis import MultiProcessRedisBackend, RedisBackend


def reader(server: RedisServer, key_prefix: str) -> RedisBackend:
    """A second backend on the same keys: what another worker's scrape would see."""
    return RedisBackend({"url": server.url, "key_prefix": key_prefix})


def scalars(found: Sequence[Series]) -> list[ScalarSeries]:
    """The series of a counter or gauge, each checked to be a `ScalarSeries`."""
    checked = []
    for series in found:
        assert isinstance(series, ScalarSeries), series
        checked.append(series)
    return checked


def test_values_of_every_type_round_trip_through_redis(
    redis_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    c = Counter("requests", "Requests", ["route"], registry=registry)
    c.labels(route="/a").inc(3)
    c.labels(route='/"q"\n').inc()
    g = Gauge("temperature", "T", registry=registry)
    g.set(21.5)
    h = Histogram("latency", "L", buckets=[0.1, 1], registry=registry)
    for v in (0.05, 0.5, 5):
        h.observe(v)
    Summary("size", "S", registry=registry).observe(7)
    Info("build", "B", registry=registry).info({"version": "1.0"})
    Enum("state", "S", states=["a", "b"], registry=registry).state("b")
    get = registry.get_sample_value
    assert get("requests_total", {"route": "/a"}) == 3.0
    assert get("requests_total", {"route": '/"q"\n'}) == 1.0
    assert get("temperature") == 21.5
    assert get("latency_bucket", {"le": "0.1"}) == 1.0
    assert get("latency_bucket", {"le": "1.0"}) == 2.0
    assert get("latency_bucket", {"le": "+Inf"}) == 3.0
    assert get("latency_count") == 3.0 and get("latency_sum") == 5.55
    assert get("size_count") == 1.0 and get("size_sum") == 7.0
    assert get("build_info", {"version": "1.0"}) == 1.0
    assert get("state", {"state": "b"}) == 1.0 and get("state", {"state": "a"}) == 0.0


def test_another_worker_reads_what_this_one_flushed(
    redis_backend: RedisBackend,
    redis_server: RedisServer,
    key_prefix: str,
    registry: CollectorRegistry,
) -> None:
    c = Counter("jobs", "Jobs", ["kind"], registry=registry)
    c.labels(kind="x").inc(5)
    assert redis_backend.flush_sync()
    other = reader(redis_server, key_prefix)
    try:
        found = other.collect([c._family.spec])[c._family.spec]
    finally:
        other.close()
    assert [(s.labels.as_dict(), s.value()) for s in scalars(found)] == [({"kind": "x"}, 5.0)]


def test_unchanged_series_are_not_sent_again(
    redis_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    c = Counter("jobs", "Jobs", registry=registry)
    c.inc()
    assert redis_backend.flush_sync()
    with redis_backend._flush_lock:  # the flusher thread must not flush in between
        assert redis_backend._buffer.take(time.time()) is None  # nothing changed since
        c.inc(2)
        batch = redis_backend._buffer.take(time.time())
    assert batch is not None and [o.incr for o in batch.ops] == [[("[]", 2.0)]]


def test_key_prefixes_isolate_apps_sharing_a_redis(
    redis_server: RedisServer, registry: CollectorRegistry
) -> None:
    values = []
    for prefix, amount in (("app-one", 1), ("app-two", 10)):
        backend = load_backend(RedisBackend, {"url": redis_server.url, "key_prefix": prefix})
        assert isinstance(backend, RedisBackend)
        try:
            reg = CollectorRegistry()
            Counter("shared_name", "Same name in both apps", registry=reg).inc(amount)
            values.append(reg.get_sample_value("shared_name_total"))
        finally:
            backend.close()
            load_backend(InProcessBackend)
        redis_server.client().delete(f"{{{prefix}|shared_name}}:v")
    assert values == [1.0, 10.0]


@pytest.mark.parametrize("bad", [{"key_prefix": "a{b}"}, {"flush_interval": 0}, {"nope": 1}])
def test_bad_config_is_refused_at_load(bad: dict[str, object]) -> None:
    from apytheus.exceptions import InvalidBackendConfigException

    with pytest.raises(InvalidBackendConfigException):
        load_backend(RedisBackend, bad)


SENTINELS = [["127.0.0.1", 26379]]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"url": "sentinel://127.0.0.1:26379/mymaster"}, '"sentinels"'),
        ({"sentinels": [["127.0.0.1", 26379]]}, "service_name"),
        ({"sentinels": "127.0.0.1:26379", "service_name": "m"}, "list of [host, port]"),
        ({"sentinels": [["127.0.0.1", "26379"]], "service_name": "m"}, "[host, port] pair"),
        ({"sentinels": [], "service_name": "m"}, "list of [host, port]"),
        ({"sentinels": SENTINELS, "service_name": "m", "url": "redis://x"}, "leave out url"),
        ({"sentinels": SENTINELS, "service_name": "m", "sentinel_password": 1}, "string"),
        ({"replicas": -1}, "replicas must be"),
        ({"replicas": True}, "replicas must be"),
        ({"replicas": 1, "cluster": True}, "not supported with cluster"),
        ({"replicas": 1, "replicas_timeout": 0}, "replicas_timeout"),
        ({"replicas": 1, "replicas_timeout": 5, "socket_timeout": 2}, "shorter than"),
    ],
)
def test_bad_sentinel_and_replica_options_are_refused_at_load(
    bad: dict[str, object], says: str
) -> None:
    from apytheus.exceptions import InvalidBackendConfigException

    with pytest.raises(InvalidBackendConfigException, match=re.escape(says)):
        load_backend(RedisBackend, bad)


def test_a_sentinel_config_makes_no_connection_until_used() -> None:
    """Nothing listens on the sentinels' port: creating the backend still succeeds."""
    backend = RedisBackend(
        {"sentinels": SENTINELS, "service_name": "m", "sentinel_password": "s", "replicas": 1}
    )
    assert backend._store.replicas == 1
    backend.close(flush=False)


def test_pytheus_alias_is_the_same_class() -> None:
    assert MultiProcessRedisBackend is RedisBackend


async def test_lifespan_flushes_periodically_and_on_exit(
    redis_server: RedisServer, key_prefix: str, registry: CollectorRegistry
) -> None:
    gc.collect()  # metrics of earlier tests would follow the switch and flush here too
    backend = load_backend(
        RedisBackend, {"url": redis_server.url, "key_prefix": key_prefix, "flush_interval": 0.05}
    )
    assert isinstance(backend, RedisBackend)
    client = redis_server.client()
    key = f"{{{key_prefix}|ticks}}:v"
    try:
        backend._flusher.stop_thread()  # only the lifespan's task flushes here
        c = Counter("ticks", "Ticks", registry=registry)
        async with apytheus.lifespan():
            c.inc()
            with anyio.fail_after(10):
                while client.hget(key, "[]") != b"1":  # noqa: ASYNC110 - polls Redis
                    await anyio.sleep(0.02)
            c.inc(2)
        assert client.hget(key, "[]") == b"3"  # the final flush on exit
    finally:
        backend.close()
        load_backend(InProcessBackend)


async def test_async_scrape_runs_on_both_loops(
    redis_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    Counter("hits", "Hits", registry=registry).inc(7)
    assert "hits_total 7.0" in await agenerate_metrics(registry)
    assert "hits_total 7.0" in generate_metrics(registry)


def test_infinite_totals_are_stored_and_do_not_block_other_updates(
    redis_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    h = Histogram("h", "H", buckets=[1], registry=registry)
    c = Counter("c", "C", registry=registry)
    h.observe(math.inf)
    c.inc()
    assert registry.get_sample_value("h_sum") == math.inf
    h.observe(0.5)
    c.inc()
    assert registry.get_sample_value("h_count") == 2.0
    assert registry.get_sample_value("c_total") == 2.0


def test_health_metrics_are_exposed_with_the_default_registry(
    redis_backend: RedisBackend, default_registry: CollectorRegistry
) -> None:
    Counter("c", "C").inc()
    text = generate_metrics()
    assert "apytheus_redis_flush_errors_total{worker=" in text
    assert default_registry.get_sample_value(
        "apytheus_redis_last_flush_timestamp_seconds", {"worker": redis_backend.worker}
    ) == pytest.approx(time.time(), abs=60)


def test_host_port_and_db_config_selects_that_database(
    redis_server: RedisServer, key_prefix: str, registry: CollectorRegistry
) -> None:
    gc.collect()
    config = {"host": "127.0.0.1", "port": redis_server.port, "db": 3, "key_prefix": key_prefix}
    backend = load_backend(RedisBackend, config)
    assert isinstance(backend, RedisBackend)
    try:
        Counter("in_db3", "C", registry=registry).inc(4)
        assert registry.get_sample_value("in_db3_total") == 4.0
        with (
            redis.Redis(port=redis_server.port, db=3) as db3,
            redis.Redis(port=redis_server.port, db=0) as db0,
        ):
            assert db3.hget(f"{{{key_prefix}|in_db3}}:v", "[]") == b"4"
            assert not db0.exists(f"{{{key_prefix}|in_db3}}:v")
    finally:
        backend.close()
        load_backend(InProcessBackend)


async def test_redis_io_does_not_wait_for_the_apps_threads(
    redis_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    """Sync endpoints (Starlette, FastAPI) run on anyio's default threads: with all of
    them busy, flushes and scrapes still go, on threads of their own."""
    c = Counter("c", "C", registry=registry)
    default = anyio.to_thread.current_default_thread_limiter()
    release = threading.Event()
    tokens = default.total_tokens
    default.total_tokens = 1
    try:
        async with anyio.create_task_group() as tg:
            wait: Callable[[], bool] = release.wait  # typed: mypy cannot infer run_sync's here
            tg.start_soon(anyio.to_thread.run_sync, wait)  # the app's only thread
            try:
                with anyio.fail_after(10):
                    while default.borrowed_tokens < 1:  # noqa: ASYNC110 - a thread, no event
                        await anyio.sleep(0.01)
                    c.inc(3)
                    await redis_backend.flush()
                    text = await agenerate_metrics(registry)
                assert "c_total 3.0" in text
                assert default.borrowed_tokens == 1  # still busy: it was not ours
            finally:
                release.set()
    finally:
        default.total_tokens = tokens
