"""Metrics of one name in several registries, on one Redis: one set of keys, one value."""

from __future__ import annotations

from collections.abc import Callable

from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Gauge, Histogram
from apytheus.backends.redis import RedisBackend


def test_same_metric_name_in_two_registries_sends_both_deltas(
    redis_server: RedisServer, make_redis_backend: Callable[..., RedisBackend]
) -> None:
    backend = make_redis_backend(redis_server)
    a, b = CollectorRegistry(), CollectorRegistry()
    Counter("jobs", "Jobs", registry=a).inc(1)
    Counter("jobs", "Jobs", registry=b).inc(10)
    assert backend.flush_sync()
    assert a.get_sample_value("jobs_total") == 11.0  # one store: the same series


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
