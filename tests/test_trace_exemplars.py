"""Exemplars from the current OpenTelemetry span, with the real SDK (MetricsMiddleware)."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from test_protobuf_encoder import decode

from apytheus import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_metrics
from apytheus.exposition import PROTOBUF_CONTENT_TYPE, render
from apytheus.middleware import MetricsMiddleware

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk")
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON  # noqa: E402


def traced(app: Any, provider: Any) -> Any:
    """An outer ASGI app that makes a span current around each request (as tracing does)."""
    tracer = provider.get_tracer("test")

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        with tracer.start_as_current_span("request") as span:
            spans.append(span.get_span_context())
            await app(scope, receive, send)

    spans: list[Any] = []
    outer.spans = spans  # type: ignore[attr-defined]
    return outer


async def hello(request: Any) -> PlainTextResponse:
    return PlainTextResponse("hi")


@pytest.mark.parametrize("option", ["exemplar", "exemplars"])
@pytest.mark.parametrize("sampled", [True, False])
async def test_the_middleware_puts_the_sampled_spans_ids_in_its_exemplars(
    sampled: bool, option: str
) -> None:
    registry = CollectorRegistry()
    provider = sdk_trace.TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    app = Starlette(routes=[Route("/hello", hello)])
    if option == "exemplar":
        inner = MetricsMiddleware(app, registry=registry, exemplar="otel")
    else:
        inner = MetricsMiddleware(app, registry=registry, exemplars="otel")
    app = traced(inner, provider)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/hello")).status_code == 200
    (span,) = app.spans
    trace_id, span_id = format(span.trace_id, "032x"), format(span.span_id, "016x")
    text = generate_metrics(registry, openmetrics=True)
    expected = f'# {{span_id="{span_id}",trace_id="{trace_id}"}}'
    assert (expected in text) is sampled
    assert ("trace_id=" in text) is sampled  # an unsampled span gives no exemplar
    families = {f.name: f for f in decode(render(registry, PROTOBUF_CONTENT_TYPE)[0])}
    (metric,) = families["http_request_duration_seconds"].metric
    found = [
        {p.name: p.value for p in b.exemplar.label}
        for b in metric.histogram.bucket
        if b.HasField("exemplar")
    ]
    assert found == ([{"span_id": span_id, "trace_id": trace_id}] if sampled else [])


def test_the_middlewares_exemplars_option_takes_only_otel_and_not_both() -> None:
    app = Starlette()
    with pytest.raises(ValueError, match="exemplars takes 'otel'"):
        MetricsMiddleware(app, registry=CollectorRegistry(), exemplars="zipkin")
    with pytest.raises(ValueError, match="exemplars takes 'otel'"):
        MetricsMiddleware(
            app, registry=CollectorRegistry(), exemplars="otel", exemplar=lambda scope: None
        )


def test_no_span_no_exemplar_and_a_bad_exemplar_name_is_refused() -> None:
    from apytheus._trace import span_exemplar

    assert span_exemplar() is None  # no span is current
    with pytest.raises(ValueError, match="'otel'"):
        MetricsMiddleware(Starlette(), registry=CollectorRegistry(), exemplar="jaeger")


def om_exemplars(registry: CollectorRegistry) -> dict[str, str]:
    """Sample line start -> its exemplar, from the OpenMetrics text."""
    found = {}
    for line in generate_metrics(registry, openmetrics=True).splitlines():
        if " # {" in line:
            sample, _, exemplar = line.partition(" # ")
            found[sample.rsplit(" ", 1)[0]] = exemplar
    return found


def ids(span: Any) -> str:
    context = span.get_span_context()
    return f'{{span_id="{context.span_id:016x}",trace_id="{context.trace_id:032x}"}}'


@pytest.mark.parametrize("where", ["metric", "registry"])
def test_a_metric_that_opts_in_takes_the_current_sampled_spans_ids(where: str) -> None:
    registry = CollectorRegistry(exemplars="otel" if where == "registry" else None)
    mine = {"exemplars": "otel"} if where == "metric" else {}
    counter = Counter("jobs", "Jobs", ["queue"], registry=registry, **mine)  # type: ignore[arg-type]
    histogram = Histogram("job_seconds", "Time", registry=registry, **mine)  # type: ignore[arg-type]
    tracer = sdk_trace.TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    with tracer.start_as_current_span("job") as span:
        counter.labels(queue="q").inc(2)
        with histogram.time():
            pass
        histogram.observe(0.3)
    found = om_exemplars(registry)
    assert found['jobs_total{queue="q"}'].startswith(f"{ids(span)} 2.0 ")
    assert found['job_seconds_bucket{le="0.5"}'].startswith(f"{ids(span)} 0.3 ")
    assert len([k for k in found if k.startswith("job_seconds")]) == 2  # time() too
    families = {f.name: f for f in decode(render(registry, PROTOBUF_CONTENT_TYPE)[0])}
    (metric,) = families["jobs_total"].metric
    labels = {p.name: p.value for p in metric.counter.exemplar.label}
    context = span.get_span_context()
    assert labels == {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
    assert metric.counter.exemplar.value == 2.0


def test_no_span_or_an_unsampled_one_gives_no_exemplar_and_a_given_exemplar_wins() -> None:
    registry = CollectorRegistry(exemplars="otel")
    counter = Counter("jobs", "Jobs", registry=registry)
    histogram = Histogram("job_seconds", "Time", registry=registry, buckets=(1.0,))
    counter.inc()  # no span
    tracer = sdk_trace.TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with tracer.start_as_current_span("job"):
        counter.inc()
        histogram.observe(0.5)
    assert om_exemplars(registry) == {}
    tracer = sdk_trace.TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    with tracer.start_as_current_span("job"):
        counter.inc(exemplar={"request": "r1"})
        histogram.observe(2.0, {"request": "r2"})
        counter.inc(value=3)  # pytheus' keyword takes the span's ids too
    found = om_exemplars(registry)
    assert found["jobs_total"].startswith('{span_id="')
    assert " 3.0 " in found["jobs_total"]
    assert found['job_seconds_bucket{le="+Inf"}'].startswith('{request="r2"} 2.0 ')


def test_exemplars_false_opts_a_metric_out_and_other_types_are_left_as_they_are() -> None:
    registry = CollectorRegistry(exemplars="otel")
    assert registry.exemplars == "otel"
    plain = Counter("plain", "Plain", registry=registry, exemplars=False)
    assert type(plain) is Counter  # untouched: its record path is the usual one
    assert type(Histogram("h", "H", registry=CollectorRegistry())) is Histogram
    gauge = Gauge("level", "Level", registry=registry)
    summary = Summary("size", "Size", registry=registry)
    tracer = sdk_trace.TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    with tracer.start_as_current_span("job"):
        plain.inc()
        gauge.inc()
        summary.observe(1.0)
    assert om_exemplars(registry) == {}


def test_bad_sources_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="'otel'"):
        Counter("c", "C", registry=CollectorRegistry(), exemplars="jaeger")
    with pytest.raises(ValueError, match="'otel'"):
        CollectorRegistry(exemplars="zipkin")


def test_without_opentelemetry_api_asking_for_otel_raises_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import apytheus._trace

    monkeypatch.setattr(apytheus._trace, "_trace", None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    registry = CollectorRegistry()
    with pytest.raises(ImportError, match=r"pip install 'apytheus\[otel\]'"):
        Counter("jobs", "Jobs", registry=registry, exemplars="otel")
    with pytest.raises(ImportError, match="opentelemetry-api"):
        Histogram("t", "T", registry=registry, exemplars="otel")
    with pytest.raises(ImportError, match="opentelemetry-api"):
        CollectorRegistry(exemplars="otel")
    assert registry.collect() == []
    Counter("jobs", "Jobs", registry=registry).inc()  # the name is still free
