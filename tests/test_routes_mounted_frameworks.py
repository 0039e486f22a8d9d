"""Litestar and Quart apps under a parameterised Starlette ``Mount``: templates, not raw values."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from quart import Quart
from route_checks import client, label_values, request_counts
from starlette.applications import Starlette
from starlette.routing import Mount

from apytheus import CollectorRegistry
from apytheus.middleware import UNMATCHED_ROUTE, MetricsMiddleware


@get("/items/{item_id:int}")
async def item(item_id: FromPath[int]) -> dict[str, int]:
    return {"item_id": item_id}


def mounted(registry: CollectorRegistry, inner: object) -> Starlette:
    app = Starlette(routes=[Mount("/org/{org}", app=inner)])  # type: ignore[arg-type]
    app.add_middleware(MetricsMiddleware, registry=registry)
    return app


async def test_a_litestar_app_under_a_mount_gets_the_mount_template(
    registry: CollectorRegistry,
) -> None:
    app = mounted(registry, Litestar(route_handlers=[item]))
    async with client(app) as c:
        assert (await c.get("/org/acme/items/3")).status_code == 200
        assert (await c.get("/org/globex/items/4")).status_code == 200
        assert (await c.get("/org/acme/nope")).status_code == 404
    assert request_counts(registry) == {
        ("GET", "/org/{org}/items/{item_id}", "200"): 2.0,
        ("GET", UNMATCHED_ROUTE, "404"): 1.0,
    }
    assert not [v for v in label_values(registry) if "acme" in v or "globex" in v]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # Quart runs on asyncio only
async def test_a_quart_app_under_a_mount_gets_the_mount_template(
    registry: CollectorRegistry,
) -> None:
    quart = Quart(__name__)

    @quart.get("/items/<int:item_id>")
    async def quart_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    app = mounted(registry, quart)
    async with client(app) as c:
        assert (await c.get("/org/acme/items/3")).status_code == 200
        assert (await c.get("/org/globex/items/4")).status_code == 200
    assert request_counts(registry) == {("GET", "/org/{org}/items/<int:item_id>", "200"): 2.0}
    assert not [v for v in label_values(registry) if "acme" in v or "globex" in v]
