"""MetricsMiddleware on a real Litestar app: ``route`` is Litestar's path template.

Litestar runs on anyio, so these run on asyncio and trio.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar, Router, get, post
from litestar.handlers import asgi
from litestar.params import FromPath, JSONBody
from litestar.static_files import create_static_files_router
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send
from route_checks import assert_scanner_collapsed, client, label_values, request_counts, scan

from apytheus import CollectorRegistry
from apytheus.middleware import UNMATCHED_ROUTE, MetricsMiddleware


@get("/items/{item_id:int}")
async def item(item_id: FromPath[int]) -> dict[str, int]:
    return {"item_id": item_id}


@post("/echo")
async def echo(data: JSONBody[dict[str, str]]) -> dict[str, str]:
    return data


@get("/boom")
async def boom() -> None:
    raise RuntimeError("handler failed")


@asgi("/legacy", is_mount=True, copy_scope=True)
async def legacy(scope: Scope, receive: Receive, send: Send) -> None:
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 200, "headers": []}
    await send(start)
    body: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": b"legacy",
        "more_body": False,
    }
    await send(body)


def litestar_app(registry: CollectorRegistry, static: Path) -> MetricsMiddleware:
    api = Router(path="/api/v1", route_handlers=[item, echo])
    files = create_static_files_router(path="/static", directories=[static])
    app = Litestar(route_handlers=[item, boom, legacy, api, files])
    return MetricsMiddleware(app, registry=registry)


async def test_requests_are_counted_under_litestars_path_template(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    (tmp_path / "site.css").write_text("body {}")
    async with client(litestar_app(registry, tmp_path)) as c:
        for i in range(5):
            assert (await c.get(f"/items/{i}")).json() == {"item_id": i}
        for i in range(3):
            assert (await c.get(f"/api/v1/items/{i}")).status_code == 200
        assert (await c.post("/api/v1/echo", json={"a": "b"})).json() == {"a": "b"}
        assert (await c.get("/boom")).status_code == 500
        assert (await c.get("/legacy/any/thing")).text == "legacy"
        assert (await c.get("/static/site.css")).text == "body {}"
        assert (await c.get("/items/not-a-number")).status_code == 404  # the converter refuses
    assert request_counts(registry) == {
        ("GET", "/items/{item_id}", "200"): 5.0,
        ("GET", "/api/v1/items/{item_id}", "200"): 3.0,
        ("POST", "/api/v1/echo", "201"): 1.0,
        ("GET", "/boom", "500"): 1.0,
        ("GET", "/legacy", "200"): 1.0,  # an ASGI mount: its own path
        ("GET", "/static/{file_path}", "200"): 1.0,
        ("GET", UNMATCHED_ROUTE, "404"): 1.0,
    }
    values = label_values(registry)
    assert not {"/items/3", "/api/v1/items/2", "/legacy/any/thing", "/static/site.css"} & values


async def test_a_scanner_collapses_into_one_unmatched_route(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    async with client(litestar_app(registry, tmp_path)) as c:
        await scan(c)
    assert_scanner_collapsed(registry)


async def test_a_method_the_route_does_not_take_is_unmatched(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    """Litestar answers 405 before it names a handler: there is no template to label."""
    async with client(litestar_app(registry, tmp_path)) as c:
        assert (await c.delete("/items/1")).status_code == 405
    assert request_counts(registry) == {("DELETE", UNMATCHED_ROUTE, "405"): 1.0}


async def test_a_mount_on_several_paths_is_labeled_with_the_one_taken(
    registry: CollectorRegistry,
) -> None:
    @asgi(["/old", "/older"], is_mount=True, copy_scope=True, name="old")
    async def old(scope: Scope, receive: Receive, send: Send) -> None:
        await legacy.fn(scope, receive, send)

    app = MetricsMiddleware(Litestar(route_handlers=[old]), registry=registry)
    async with client(app) as c:
        assert (await c.get("/older/a/b")).text == "legacy"
        assert (await c.get("/old/c")).text == "legacy"
        assert (await c.get("/old/d")).text == "legacy"
    assert request_counts(registry) == {("GET", "/older", "200"): 1.0, ("GET", "/old", "200"): 2.0}
