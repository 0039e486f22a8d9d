"""Custom collectors never break a scrape: clashing families are left out, invalid parts dropped.

Prometheus refuses a whole scrape that has one family twice, or an exemplar
where OpenMetrics allows none, so one bad collector would lose every metric.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import BucketSpan, Exemplar, NativeHistogram
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, CustomCollector, Gauge, make_asgi_app
from apytheus.backends.redis import RedisBackend
from apytheus.exposition import generate_metrics

# prometheus_client's OpenMetrics parser has no annotations: what it is, typed
parse_openmetrics: Callable[[str], Iterable[Metric]] = om_parser.text_string_to_metric_families


def family_names(text: str, openmetrics: bool) -> list[str]:
    """The families of an exposition, as the official parser reads them (it raises if invalid)."""
    parse = parse_openmetrics if openmetrics else parse_text
    return [f.name for f in parse(text)]


class Clashing(CustomCollector):
    """Yields a gauge named like the registered counter ``jobs``, then a fine one."""

    def collect(self) -> Iterator[Any]:
        yield Gauge("jobs", "Clashes with the registered counter", registry=None)
        yield Gauge("free", "Fine", registry=None)


class Twice:
    """A collector registered twice: its family would be written twice."""

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily("temperature", "Temperature", value=21)


@pytest.mark.parametrize("openmetrics", [False, True])
def test_a_collector_family_named_like_a_metric_is_left_out_and_counted(
    registry: CollectorRegistry, openmetrics: bool, caplog: pytest.LogCaptureFixture
) -> None:
    Counter("jobs", "Jobs", registry=registry).inc(3)
    registry.register(Clashing())
    with caplog.at_level(logging.ERROR, logger="apytheus"):
        first = generate_metrics(registry, openmetrics=openmetrics)
        second = generate_metrics(registry, openmetrics=openmetrics)
    for text in (first, second):
        names = family_names(text, openmetrics)
        assert len(names) == len(set(names))
        assert "jobs" in names and "free" in names
        assert "Clashes with" not in text
    assert 'apytheus_collector_errors_total{collector="clashing"} 2.0' in second
    assert caplog.text.count("whose names are already exposed") == 1  # logged once


@pytest.mark.parametrize("openmetrics", [False, True])
def test_a_collector_registered_twice_exposes_its_family_once(
    registry: CollectorRegistry, openmetrics: bool
) -> None:
    registry.register(Twice())
    registry.register(Twice())
    text = generate_metrics(registry, openmetrics=openmetrics)
    assert family_names(text, openmetrics).count("temperature") == 1
    assert 'apytheus_collector_errors_total{collector="Twice"} 1.0' in text


def test_a_counter_family_clashing_through_its_total_suffix_is_left_out(
    registry: CollectorRegistry,
) -> None:
    """A gauge ``x_total`` and a counter ``x`` would both write ``# TYPE x_total``."""
    Counter("x", "X", registry=registry).inc()

    class Suffix:
        def collect(self) -> Iterator[Any]:
            yield GaugeMetricFamily("x_total", "Gauge", value=1)

    registry.register(Suffix())
    text = generate_metrics(registry)
    assert text.count("# TYPE x_total") == 1
    assert family_names(text, False).count("x") == 1


async def test_the_async_scrape_leaves_the_clash_out_too(registry: CollectorRegistry) -> None:
    Counter("jobs", "Jobs", registry=registry).inc()
    registry.register(Clashing())
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        text = (await client.get("/metrics")).text
        om = (await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})).text
    assert family_names(text, False).count("jobs") == 1
    assert family_names(om, True).count("jobs") == 1


def test_a_clash_is_left_out_on_the_redis_backend_too(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    make_redis_backend(redis_server)
    Counter("jobs", "Jobs", registry=registry).inc(2)
    registry.register(Clashing())
    text = generate_metrics(registry, openmetrics=True)
    assert family_names(text, True).count("jobs") == 1
    assert "jobs_total 2.0" in text


@pytest.mark.parametrize("openmetrics", [False, True])
def test_a_native_histogram_sample_of_a_client_family_is_left_out(
    registry: CollectorRegistry, openmetrics: bool
) -> None:
    class Native:
        def collect(self) -> Iterator[Any]:
            h = HistogramMetricFamily("nh", "Native", labels=["a"])
            h.add_sample(
                "nh",
                {"a": "x"},
                0,
                native_histogram=NativeHistogram(
                    3, 1.5, 0, 0.001, 1, (BucketSpan(0, 1),), None, (2,), None
                ),
            )
            h.add_metric(["y"], buckets=[("1.0", 1), ("+Inf", 2)], sum_value=3)
            yield h

    registry.register(Native())
    text = generate_metrics(registry, openmetrics=openmetrics)
    (family,) = list((parse_openmetrics if openmetrics else parse_text)(text))
    assert family.type == "histogram"
    assert {s.labels["a"] for s in family.samples} == {"y"}  # the native sample is gone
    assert 'nh{a="x"}' not in text


def test_an_exemplar_on_a_created_sample_is_dropped_and_the_scrape_stays_valid(
    registry: CollectorRegistry,
) -> None:
    class WithExemplars:
        def collect(self) -> Iterator[Any]:
            c = CounterMetricFamily("hits", "Hits")
            c.add_sample("hits_total", {}, 3, exemplar=Exemplar({"trace_id": "a"}, 1, 10.0))
            c.add_sample("hits_created", {}, 5.0, exemplar=Exemplar({"trace_id": "b"}, 1, 10.0))
            yield c
            g = GaugeMetricFamily("level", "Level")
            g.add_sample("level", {}, 2, exemplar=Exemplar({"trace_id": "c"}, 1, 10.0))
            yield g

    registry.register(WithExemplars())
    text = generate_metrics(registry, openmetrics=True)
    families = {f.name: f for f in parse_openmetrics(text)}  # raises on an invalid exemplar
    samples = {s.name: s for f in families.values() for s in f.samples}
    assert samples["hits_total"].exemplar is not None  # allowed there: kept
    assert samples["hits_created"].exemplar is None
    assert samples["level"].exemplar is None
    assert 'trace_id="b"' not in text and 'trace_id="c"' not in text


def test_a_collector_may_yield_a_labeled_child_of_a_metric_it_made(
    registry: CollectorRegistry,
) -> None:
    class Child(CustomCollector):
        def collect(self) -> Iterator[Any]:
            child = Gauge("g_child", "d", ["a"], registry=None).labels(a="1")
            child.set(3)
            yield child  # the metric itself is gone: its child keeps it

    registry.register(Child())
    assert 'g_child{a="1"} 3.0' in generate_metrics(registry)
