"""Registries: prefix, duplicates, the REGISTRY proxy, custom collectors."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from apytheus import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    CustomCollector,
    Gauge,
    Histogram,
    agenerate_metrics,
    generate_metrics,
)


def test_metrics_register_in_the_default_registry(default_registry: CollectorRegistry) -> None:
    Counter("c", "C").inc()
    assert default_registry.get_sample_value("c_total") == 1.0
    assert REGISTRY.get_sample_value("c_total") == 1.0


def test_registry_none_skips_registration(default_registry: CollectorRegistry) -> None:
    c = Counter("c", "C", registry=None)
    c.inc()
    assert generate_metrics() == ""
    default_registry.register(c)
    assert default_registry.get_sample_value("c_total") == 1.0


def test_prefix_is_joined_with_an_underscore(registry: CollectorRegistry) -> None:
    prefixed = CollectorRegistry(prefix="shop")
    Counter("orders", "Orders", registry=prefixed).inc()
    text = generate_metrics(prefixed)
    assert "# TYPE shop_orders_total counter" in text
    assert prefixed.get_sample_value("shop_orders_total") == 1.0


def test_invalid_prefix_is_refused() -> None:
    with pytest.raises(ValueError):
        CollectorRegistry(prefix="")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (lambda r: Counter("x", "X", registry=r), lambda r: Gauge("x", "X", registry=r)),
        (lambda r: Counter("x", "X", registry=r), lambda r: Gauge("x_total", "X", registry=r)),
        (lambda r: Histogram("x", "X", registry=r), lambda r: Gauge("x_bucket", "X", registry=r)),
        (lambda r: Gauge("x_count", "X", registry=r), lambda r: Histogram("x", "X", registry=r)),
    ],
)
def test_registering_a_clashing_name_raises(
    registry: CollectorRegistry, first: object, second: object
) -> None:
    first(registry)  # type: ignore[operator]
    before = generate_metrics(registry)
    with pytest.raises(ValueError, match="duplicate metric"):
        second(registry)  # type: ignore[operator]
    assert generate_metrics(registry) == before


def test_the_same_name_in_two_registries_keeps_separate_values() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    Counter("c", "C", registry=a).inc(1)
    Counter("c", "C", registry=b).inc(5)
    assert a.get_sample_value("c_total") == 1.0
    assert b.get_sample_value("c_total") == 5.0


def test_unregister_removes_the_metric_and_frees_its_name(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", registry=registry)
    registry.unregister(c)
    assert generate_metrics(registry) == ""
    Gauge("c", "C", registry=registry)
    with pytest.raises(KeyError):
        registry.unregister(c)


def test_set_registry_switches_the_default(default_registry: CollectorRegistry) -> None:
    other = CollectorRegistry(prefix="other")
    REGISTRY.set_registry(other)
    Counter("c", "C").inc()
    assert REGISTRY.prefix == "other"
    assert "other_c_total 1.0" in generate_metrics()
    assert generate_metrics(default_registry) == ""


class Temperatures(CustomCollector):
    def collect(self) -> Iterator[Gauge]:
        g = Gauge("temperature_celsius", "Temperature", ["room"], registry=None)
        g.labels(room="kitchen").set(21.5)
        yield g


class QueueDepth:
    """Any object with an async collect() works (no base class needed)."""

    name = "queue"

    async def collect(self) -> list[Gauge]:
        g = Gauge("queue_depth", "Jobs waiting", registry=None)
        g.set(7)
        return [g]


class Broken(CustomCollector):
    def collect(self) -> Iterator[Gauge]:
        raise RuntimeError("database unreachable")


def test_custom_collector_name_is_its_lowercased_class_name() -> None:
    assert Temperatures().name == "temperatures"


def test_sync_custom_collector_is_exposed(registry: CollectorRegistry) -> None:
    registry.register(Temperatures())
    assert registry.get_sample_value("temperature_celsius", {"room": "kitchen"}) == 21.5


async def test_async_custom_collector_is_awaited_by_the_async_collector(
    registry: CollectorRegistry,
) -> None:
    registry.register(QueueDepth())
    assert "queue_depth 7.0" in await agenerate_metrics(registry)


def test_async_custom_collector_works_from_sync_generate_metrics(
    registry: CollectorRegistry,
) -> None:
    registry.register(QueueDepth())
    assert "queue_depth 7.0" in generate_metrics(registry)


async def test_a_failing_collector_is_logged_and_counted_and_the_rest_served(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    Counter("ok", "Still served", registry=registry).inc()
    registry.register(Broken())
    registry.register(Temperatures())
    with caplog.at_level(logging.ERROR, logger="apytheus"):
        text = await agenerate_metrics(registry)
    assert "ok_total 1.0" in text
    assert 'temperature_celsius{room="kitchen"} 21.5' in text
    assert 'apytheus_collector_errors_total{collector="broken"}' in text
    assert "database unreachable" in caplog.text


def test_registering_the_same_collector_twice_raises(registry: CollectorRegistry) -> None:
    t = Temperatures()
    registry.register(t)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(t)
    with pytest.raises(TypeError):
        registry.register(object())


def test_a_collector_failure_is_reported_only_by_its_own_registry(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    other = CollectorRegistry()
    Counter("fine", "Fine", registry=other)
    registry.register(Broken())
    with caplog.at_level(logging.CRITICAL, logger="apytheus"):
        generate_metrics(registry)
    assert "apytheus_collector_errors" in generate_metrics(registry)
    assert "apytheus_collector_errors" not in generate_metrics(other)


def test_failures_in_the_default_registry_are_reported_through_the_proxy(
    default_registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    REGISTRY.register(Broken())
    with caplog.at_level(logging.CRITICAL, logger="apytheus"):
        generate_metrics()
    assert 'apytheus_collector_errors_total{collector="broken"} 2.0' in generate_metrics(
        default_registry
    )


def test_a_clash_raises_duplicate_timeseries_naming_the_names(registry: CollectorRegistry) -> None:
    from apytheus.exceptions import DuplicateTimeseries

    Counter("jobs", "Jobs", registry=registry)
    with pytest.raises(DuplicateTimeseries) as caught:
        Gauge("jobs_total", "Jobs", registry=registry)
    assert isinstance(caught.value, ValueError)
    assert caught.value.duplicates == {"jobs_total"}


async def test_a_restricted_registry_renders_only_the_named_metrics(
    registry: CollectorRegistry,
) -> None:
    Counter("wanted", "Wanted", registry=registry).inc()
    Gauge("other", "Other", registry=registry).set(1)
    view = registry.restricted_registry(["wanted_total"])
    for text in (generate_metrics(view), await agenerate_metrics(view)):
        assert "wanted_total 1.0" in text and "other" not in text
    # names given to the call narrow the view further
    assert generate_metrics(view, names=["other"]) == ""
    # the proxy hands out views of the registry behind it
    REGISTRY.set_registry(registry)
    assert "other 1.0" in generate_metrics(REGISTRY.restricted_registry(["other"]))
