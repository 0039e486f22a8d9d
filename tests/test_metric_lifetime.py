"""A metric nobody references is gone at once: no reference cycle keeps it (or its series) alive.

The cyclic garbage collector is switched off in these tests: what they check
must happen through reference counting alone, the moment the last reference
is dropped.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator

import pytest
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Gauge, Histogram
from apytheus.backends.redis import RedisBackend
from apytheus.middleware import MetricsMiddleware


@pytest.fixture(autouse=True)
def no_cycle_collector() -> Iterator[None]:
    """Only reference counting may free objects during the test."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_dropped_registry_and_its_labeled_metrics_are_freed_at_once() -> None:
    registry = CollectorRegistry()
    counter = Counter("jobs", "Jobs", ["queue", "code"], registry=registry)
    counter.labels(queue="a", code="1").inc()
    counter.labels({"queue": "b", "code": "2"}).inc()
    counter.labels("c", 3).inc()  # a non-str value: cached apart, with its class
    partial = counter.labels(queue="d")
    partial.labels(code="4").inc()
    gauge = Gauge("level", "Level", ["a"], default_labels={"a": "x"}, registry=registry)
    gauge.labels(a="x").set(1)  # the handle of the defaults is the metric itself
    histogram = Histogram("latency", "L", ["route"], registry=registry)
    histogram.labels("/").observe(0.1)
    refs: list[weakref.ref[object]] = [weakref.ref(m._family) for m in (counter, gauge, histogram)]
    refs += [weakref.ref(counter), weakref.ref(partial), weakref.ref(registry)]
    del counter, partial, gauge, histogram, registry
    assert [r() for r in refs] == [None] * len(refs)


def test_an_unregistered_metric_is_freed_when_its_last_reference_goes() -> None:
    registry = CollectorRegistry()
    counter = Counter("jobs", "Jobs", ["queue"], registry=registry)
    child = counter.labels(queue="a")
    child.inc()
    registry.unregister(counter)
    ref = weakref.ref(counter._family)
    del counter
    assert ref() is not None  # the child still holds it
    child.inc()
    assert "jobs" in repr(child) and child.name == "jobs"
    del child
    assert ref() is None


def test_the_metric_cached_in_a_child_makes_no_cycle() -> None:
    """Defaults fill every label: a child's labels() may give the metric itself back."""
    counter = Counter("jobs", "Jobs", ["a"], default_labels={"a": "1"}, registry=None)
    ref = weakref.ref(counter._family)
    other = counter.labels(a="2")
    assert other.labels(a="1") is counter
    del counter, other
    assert ref() is None


def test_children_made_after_the_metric_was_dropped_make_no_cycle() -> None:
    registry = CollectorRegistry()
    partial = Counter("jobs", "Jobs", ["a", "b"], registry=registry).labels(a="1")
    partial.labels(b="2").inc()  # the metric itself is gone already
    assert registry.get_sample_value("jobs_total", {"a": "1", "b": "2"}) == 1.0
    ref = weakref.ref(partial._family)
    del partial, registry
    assert ref() is None


def test_a_registered_metric_lives_on_through_its_registry() -> None:
    registry = CollectorRegistry()
    child = Counter("jobs", "Jobs", ["queue"], registry=registry).labels(queue="a")
    child.inc(2)
    assert registry.get_sample_value("jobs_total", {"queue": "a"}) == 2.0


def test_the_middlewares_metrics_are_freed_with_their_registry() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        pass

    registry = CollectorRegistry()
    middleware = MetricsMiddleware(app, registry=registry)
    middleware.metrics.children_for(("GET", "/", 200), ["GET", "/", "200"])
    ref = weakref.ref(middleware.metrics.duration._family)
    del middleware, registry
    assert ref() is None


def test_a_dropped_metric_is_gone_from_the_next_redis_flush(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    key_prefix: str,
) -> None:
    backend = make_redis_backend(redis_server)
    others = backend._buffer.size()  # series that other test modules keep alive
    registry = CollectorRegistry()
    counter = Counter("jobs", "Jobs", ["queue"], registry=registry)
    counter.labels(queue="a").inc(5)
    assert backend.flush_sync()
    assert backend._buffer.size() == others + 1
    del counter, registry
    assert backend._buffer.size() == others  # detached the moment it was dropped
    # A new metric of the same name in a new registry, after a switch to a new backend
    # on the same store: the dropped one must not follow the switch and send its
    # total again (5 would then count twice).
    second = make_redis_backend(redis_server)
    fresh = CollectorRegistry()
    again = Counter("jobs", "Jobs", ["queue"], registry=fresh)
    again.labels(queue="a").inc(1)
    assert second.flush_sync()
    with redis_server.client() as client:
        assert client.hget(f"{{{key_prefix}|jobs}}:v", '["a"]') == b"6"
