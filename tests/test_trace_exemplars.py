"""Exemplars from the current OpenTelemetry span, with the real SDK (MetricsMiddleware)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from test_protobuf_encoder import decode

from apytheus import CollectorRegistry, generate_metrics
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


@pytest.mark.parametrize("sampled", [True, False])
async def test_the_middleware_puts_the_sampled_spans_ids_in_its_exemplars(sampled: bool) -> None:
    registry = CollectorRegistry()
    provider = sdk_trace.TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    inner = MetricsMiddleware(
        Starlette(routes=[Route("/hello", hello)]), registry=registry, exemplar="otel"
    )
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


def test_no_span_no_exemplar_and_a_bad_exemplar_name_is_refused() -> None:
    from apytheus._trace import span_exemplar

    assert span_exemplar() is None  # no span is current
    with pytest.raises(ValueError, match="'otel'"):
        MetricsMiddleware(Starlette(), registry=CollectorRegistry(), exemplar="jaeger")
