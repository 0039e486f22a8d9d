"""MetricsMiddleware on a real Quart app: ``route`` is Quart's (werkzeug's) URL rule.

Quart runs on asyncio only (it starts its request tasks with ``asyncio``), so these
tests do too.
"""

from __future__ import annotations

import pytest
from quart import Blueprint, Quart, request
from route_checks import assert_scanner_collapsed, client, label_values, request_counts, scan

from apytheus import CollectorRegistry
from apytheus.middleware import UNMATCHED_ROUTE, MetricsMiddleware

# Quart's ASGI handler calls asyncio.ensure_future: it cannot run on trio
pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio"])


def quart_app(registry: CollectorRegistry, *, wrap_asgi_app: bool = True) -> object:
    app = Quart(__name__)

    @app.get("/items/<int:item_id>")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("handler failed")

    api = Blueprint("api", __name__, url_prefix="/api/v1")

    @api.post("/echo/<name>")
    async def echo(name: str) -> str:
        return f"{name}:{len(await request.get_data())}"

    app.register_blueprint(api)
    if wrap_asgi_app:  # Quart's way: the app object stays a Quart
        app.asgi_app = MetricsMiddleware(app.asgi_app, registry=registry)  # type: ignore[method-assign,assignment]
        return app
    return MetricsMiddleware(app, registry=registry)


@pytest.mark.parametrize("wrap_asgi_app", [True, False], ids=["app.asgi_app", "app"])
async def test_requests_are_counted_under_quarts_url_rule(
    registry: CollectorRegistry, wrap_asgi_app: bool
) -> None:
    async with client(quart_app(registry, wrap_asgi_app=wrap_asgi_app)) as c:
        for i in range(5):
            assert (await c.get(f"/items/{i}")).json() == {"item_id": i}
        for name in ("ann", "bob"):
            assert (await c.post(f"/api/v1/echo/{name}", content=b"!")).text == f"{name}:1"
        assert (await c.get("/boom")).status_code == 500
        assert (await c.get("/items/not-a-number")).status_code == 404  # the converter refuses
    assert request_counts(registry) == {
        ("GET", "/items/<int:item_id>", "200"): 5.0,
        ("POST", "/api/v1/echo/<name>", "200"): 2.0,
        ("GET", "/boom", "500"): 1.0,
        ("GET", UNMATCHED_ROUTE, "404"): 1.0,
    }
    assert not {"/items/3", "/api/v1/echo/ann", "/items/not-a-number"} & label_values(registry)


async def test_a_scanner_collapses_into_one_unmatched_route(registry: CollectorRegistry) -> None:
    async with client(quart_app(registry)) as c:
        await scan(c)
    assert_scanner_collapsed(registry)


async def test_a_method_the_rule_does_not_take_is_unmatched(registry: CollectorRegistry) -> None:
    """werkzeug refuses the method while matching (405): no rule is matched."""
    async with client(quart_app(registry)) as c:
        assert (await c.delete("/items/1")).status_code == 405
    assert request_counts(registry) == {("DELETE", UNMATCHED_ROUTE, "405"): 1.0}
