"""The public API used as a user would; checked by mypy (strict), never run.

A change to a public signature that breaks ordinary code shows up here as a
type error: ``./dev test`` runs mypy over ``tests/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import apytheus
import apytheus.celery
import apytheus.django
from apytheus import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    CustomCollector,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    agenerate_metrics,
    generate_metrics,
    make_asgi_app,
)
from apytheus.backends import Backend, InProcessBackend, get_backend, load_backend
from apytheus.exceptions import DuplicateTimeseries, UnobservableMetricException
from apytheus.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    Format,
    MetricsApp,
    choose_format,
    negotiate,
    render,
)
from apytheus.middleware import MetricsMiddleware
from apytheus.registry import Registry

registry: Registry = CollectorRegistry(prefix="shop")
requests = Counter("requests", "Requests", ["route"], registry=registry)
requests.labels(route="/").inc()
requests.labels({"route": "/"}).inc(2.5)
requests.labels("/").inc(exemplar={"trace_id": "abc"})
requests.labels(route="/").reset()

in_flight = Gauge("in_flight", "In flight", multiprocess_mode="livesum", registry=registry)
in_flight.inc()
in_flight.dec(0.5)
in_flight.set(3)
in_flight.set_function(lambda: 1.0)

latency = Histogram("latency_seconds", "Latency", buckets=(0.1, 1.0), registry=registry)
latency.observe(0.2)
with latency.time() as timer:
    pass
duration: float | None = timer.duration

summary = Summary("payload_bytes", "Payloads", registry=registry)
summary.observe(512)
Info("build", "Build", registry=registry).info({"version": "1.0"})
Enum("state", "State", states=["idle", "busy"], registry=registry).state("busy")


@requests.labels(route="/jobs")
def job() -> int:
    return 1


@latency
async def handler() -> str:
    async with in_flight.track_inprogress():
        return "done"


class Pool(CustomCollector):
    def collect(self) -> Iterator[Gauge]:
        gauge = Gauge("pool_size", "Pool size", registry=None)
        gauge.set(7)
        yield gauge


REGISTRY.register(Pool())
text: str = generate_metrics(registry)
view = CollectorRegistry().restricted_registry(["requests_total"])
openmetrics, content_type = choose_format(OPENMETRICS_CONTENT_TYPE)
body, body_type = render(registry, OPENMETRICS_CONTENT_TYPE, protobuf=False)
chosen: Format = negotiate(OPENMETRICS_CONTENT_TYPE)
escaped: str = generate_metrics(registry, escaping="allow-utf-8")
measured = Histogram("wait", "Wait", unit="seconds", registry=registry)
app: MetricsApp = make_asgi_app(registry)
backend: Backend = load_backend(InProcessBackend)
current: Backend = get_backend()


async def scrape() -> str:
    async with apytheus.lifespan():
        return await agenerate_metrics(registry, openmetrics=True)


@asynccontextmanager
async def app_lifespan(app: object) -> AsyncIterator[None]:
    async with apytheus.lifespan(app):
        yield


def wrap(asgi: MetricsApp) -> MetricsMiddleware:
    return MetricsMiddleware(asgi, registry=None)


# Exemplars from the current sampled OpenTelemetry span (`pip install 'apytheus[otel]'`)
def traced(asgi: MetricsApp) -> MetricsMiddleware:
    return MetricsMiddleware(asgi, exemplars="otel", native_histograms=True)


traced_registry = CollectorRegistry(exemplars="otel")
source: str | None = traced_registry.exemplars
jobs = Counter("jobs", "Jobs", ["queue"], registry=traced_registry, exemplars="otel")
jobs.labels(queue="mail").inc()
untraced = Counter("untraced", "Opted out", registry=traced_registry, exemplars=False)
job_seconds = Histogram("job_seconds", "Job time", registry=traced_registry, exemplars="otel")
job_seconds.observe(0.3)
job_seconds.observe(0.3, exemplar={"trace_id": "abc"})  # a given exemplar wins
default_source: str | None = REGISTRY.exemplars

# Celery: each prefork child's metrics flushed when it exits
apytheus.celery.install()
apytheus.celery.close_backend(sender=None)


# Django under ASGI: the route template for MetricsMiddleware (settings.MIDDLEWARE)
def django_chain(get_response: Callable[[object], object]) -> apytheus.django.RouteMiddleware:
    return apytheus.django.RouteMiddleware(get_response)


try:
    Counter("requests", "Again", registry=registry)
except DuplicateTimeseries as exc:
    clashes: set[str] = exc.duplicates
except UnobservableMetricException:
    pass
