"""MetricsMiddleware on real Starlette and FastAPI apps (driven through httpx)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypedDict

import anyio
import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

import apytheus._record.timers as instrument
from apytheus import CollectorRegistry
from apytheus.middleware import UNMATCHED_ROUTE, MetricsMiddleware, PytheusMiddlewareASGI

if TYPE_CHECKING:
    from typing_extensions import Unpack


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"item {request.path_params}")


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("handler failed")


async def stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
            yield b"x" * 100

    return StreamingResponse(chunks())


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse((await request.body()).decode())


class Options(TypedDict, total=False):
    """The options of `MetricsMiddleware` these tests set (checked against its signature)."""

    group_status_codes: bool
    extra_labels: Callable[[Scope], Mapping[str, str]]
    extra_label_names: Sequence[str]
    exemplar: Callable[[Scope], Mapping[str, str] | None]


def starlette_app(registry: CollectorRegistry, **options: Unpack[Options]) -> Starlette:
    api = [Route("/users/{user_id}", item), Route("/echo", echo, methods=["POST"])]
    app = Starlette(
        routes=[
            Route("/items/{item_id}", item),
            Route("/boom", boom),
            Route("/stream", stream),
            Route("/metrics", item),
            Mount("/api/v1", routes=api),
        ]
    )
    app.add_middleware(MetricsMiddleware, registry=registry, **options)
    return app


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def count(registry: CollectorRegistry, **labels: str) -> float | None:
    return registry.get_sample_value("http_request_duration_seconds_count", labels)


async def test_route_is_the_template_not_the_raw_path(registry: CollectorRegistry) -> None:
    async with client(starlette_app(registry)) as c:
        for i in range(5):
            assert (await c.get(f"/items/{i}")).status_code == 200
    assert count(registry, method="GET", route="/items/{item_id}", status_code="200") == 5.0
    assert "/items/3" not in "".join(
        s for f in _families(registry) for s in (x.labels.text for x in f.samples)
    )


async def test_routes_under_a_mount_include_the_mount_path(registry: CollectorRegistry) -> None:
    async with client(starlette_app(registry)) as c:
        await c.get("/api/v1/users/42")
        await c.post("/api/v1/echo", content=b"hello")
    assert count(registry, method="GET", route="/api/v1/users/{user_id}", status_code="200") == 1
    size = registry.get_sample_value(
        "http_request_size_bytes_sum",
        {"method": "POST", "route": "/api/v1/echo", "status_code": "200"},
    )
    assert size == 5.0


async def test_unmatched_paths_collapse_into_one_route(registry: CollectorRegistry) -> None:
    async with client(starlette_app(registry)) as c:
        for path in ("/wp-admin", "/.env", "/x/y/z"):
            assert (await c.get(path)).status_code == 404
    assert count(registry, method="GET", route=UNMATCHED_ROUTE, status_code="404") == 3.0


async def test_an_exception_in_the_app_is_recorded_as_500(registry: CollectorRegistry) -> None:
    async with client(starlette_app(registry)) as c:
        assert (await c.get("/boom")).status_code == 500
    assert count(registry, method="GET", route="/boom", status_code="500") == 1.0
    assert registry.get_sample_value("http_requests_in_progress", {"method": "GET"}) == 0.0


async def test_a_streaming_response_is_timed_to_its_last_byte_and_sized(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter(range(100))
    monkeypatch.setattr(instrument, "clock", lambda: float(next(ticks)))
    app = starlette_app(registry)
    monkeypatch.setattr("apytheus.middleware.clock", instrument.clock)
    async with client(app) as c:
        assert (await c.get("/stream")).content == b"x" * 300
    labels = {"method": "GET", "route": "/stream", "status_code": "200"}
    assert registry.get_sample_value("http_response_size_bytes_sum", labels) == 300.0
    assert registry.get_sample_value("http_request_duration_seconds_sum", labels) == 1.0


async def test_excluded_paths_are_not_recorded(registry: CollectorRegistry) -> None:
    async with client(starlette_app(registry)) as c:
        await c.get("/metrics")
    assert count(registry, method="GET", route="/metrics", status_code="200") is None


async def test_status_codes_can_be_grouped(registry: CollectorRegistry) -> None:
    async with client(starlette_app(registry, group_status_codes=True)) as c:
        await c.get("/items/1")
        await c.get("/nope")
    assert count(registry, method="GET", route="/items/{item_id}", status_code="2xx") == 1.0
    assert count(registry, method="GET", route=UNMATCHED_ROUTE, status_code="4xx") == 1.0


async def test_extra_labels_come_from_the_request(registry: CollectorRegistry) -> None:
    def tenant(scope: Scope) -> dict[str, str]:
        headers = dict(scope["headers"])
        return {"tenant": headers.get(b"x-tenant", b"none").decode()}

    app = starlette_app(registry, extra_labels=tenant, extra_label_names=["tenant"])
    async with client(app) as c:
        await c.get("/items/1", headers={"x-tenant": "acme"})
    assert count(registry, method="GET", route="/items/{item_id}", status_code="200", tenant="acme")


async def test_unknown_methods_are_labeled_other(registry: CollectorRegistry) -> None:
    async with client(starlette_app(registry)) as c:
        await c.request("BREW", "/items/1")
    assert registry.get_sample_value("http_requests_in_progress", {"method": "OTHER"}) == 0.0


async def test_fastapi_routes_use_their_templates(registry: CollectorRegistry) -> None:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, int]:
        return {"order": order_id}

    app.add_middleware(PytheusMiddlewareASGI, registry=registry)
    async with client(app) as c:
        assert (await c.get("/orders/7")).json() == {"order": 7}
    assert count(registry, method="GET", route="/orders/{order_id}", status_code="200") == 1.0


async def test_the_wrapped_apps_lifespan_still_runs(registry: CollectorRegistry) -> None:
    events: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        message = await receive()
        events.append(message["type"])
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        events.append(message["type"])
        await send({"type": "lifespan.shutdown.complete"})

    app = MetricsMiddleware(inner, registry=registry)
    incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_two_middlewares_on_one_registry_share_the_metrics(registry: CollectorRegistry) -> None:
    inner = starlette_app(CollectorRegistry())
    first = MetricsMiddleware(inner, registry=registry)
    second = MetricsMiddleware(inner, registry=registry)  # no duplicate-metric error
    assert first.metrics is second.metrics
    with pytest.raises(ValueError, match="extra labels"):
        MetricsMiddleware(
            inner, registry=registry, extra_labels=lambda s: {}, extra_label_names=["x"]
        )


def _families(registry: CollectorRegistry) -> list:  # type: ignore[type-arg]
    from apytheus._collect.read import collect_sync

    return collect_sync(registry, openmetrics=False)


async def test_requests_after_clearing_the_metrics_are_recorded_again(
    registry: CollectorRegistry,
) -> None:
    app = starlette_app(registry)
    async with client(app) as c:
        await c.get("/items/1")
        middleware = MetricsMiddleware(app, registry=registry)  # the same shared metrics
        middleware.metrics.duration.clear()
        middleware.metrics.in_progress.clear()
        await c.get("/items/2")
    assert count(registry, method="GET", route="/items/{item_id}", status_code="200") == 1.0
    assert registry.get_sample_value("http_requests_in_progress", {"method": "GET"}) == 0.0


async def test_exemplars_from_the_request_show_in_openmetrics(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    def trace(scope: Scope) -> dict[str, str] | None:
        headers = dict(scope["headers"])
        trace_id = headers.get(b"x-trace-id")
        if trace_id == b"boom":
            raise RuntimeError("bad header")
        return {"trace_id": trace_id.decode()} if trace_id else None

    app = starlette_app(registry, exemplar=trace)
    async with client(app) as c:
        await c.get("/items/1", headers={"x-trace-id": "abc123"})
        await c.get("/items/2")  # no exemplar
        await c.get("/items/3", headers={"x-trace-id": "boom"})  # the callback fails
    from apytheus import generate_metrics

    text = generate_metrics(registry, openmetrics=True)
    assert '# {trace_id="abc123"}' in text
    assert count(registry, method="GET", route="/items/{item_id}", status_code="200") == 3.0
    assert caplog.text.count("exemplar function failed") == 1


async def test_pytheus_middleware_counts_every_request_metrics_included() -> None:
    """The blog post's sample: the second visit to /metrics shows the first one."""
    from fastapi.responses import PlainTextResponse as FastAPIText

    from apytheus.exposition import generate_metrics

    app = FastAPI()
    app.add_middleware(PytheusMiddlewareASGI)

    @app.get("/metrics", response_class=FastAPIText)
    def pytheus_metrics() -> str:
        return generate_metrics()

    async with client(app) as c:
        await c.get("/metrics")
        text = (await c.get("/metrics")).text
    labels = '{method="GET",route="/metrics",status_code="200"}'
    assert f"http_request_duration_seconds_count{labels} 1.0" in text
    assert f"http_response_size_bytes_count{labels} 1.0" in text
    # as in pytheus, a request without a body has no size observed
    assert f"http_request_size_bytes_count{labels} 0.0" in text


async def test_metrics_middleware_still_leaves_metrics_out_by_default(
    registry: CollectorRegistry,
) -> None:
    async with client(starlette_app(registry)) as c:
        await c.get("/metrics")
        await c.get("/items/1")
    assert count(registry, method="GET", route="/metrics", status_code="200") is None
    assert count(registry, method="GET", route="/items/{item_id}", status_code="200") == 1.0
