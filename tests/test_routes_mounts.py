"""``route`` under Starlette ``Mount``s, ``Host``s and FastAPI routers: the full template.

Starlette keeps only the raw matched prefix of a ``Mount`` (in ``root_path``) and
overwrites ``scope["route"]`` at each level; every test here checks the exact
labels and that no raw path segment reaches a label value.
"""

from __future__ import annotations

import random

import pytest
from fastapi import APIRouter, FastAPI
from route_checks import client, label_values, request_counts
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Host, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from apytheus import CollectorRegistry
from apytheus.middleware import UNMATCHED_ROUTE, MetricsMiddleware


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def plain_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app with no routes of its own (as StaticFiles or a WSGI bridge)."""
    await PlainTextResponse("plain")(scope, receive, send)


def starlette_app(registry: CollectorRegistry, *, wrap: bool = False) -> object:
    team = [Route("/projects/{project_id:int}", ok)]
    hosted = Router(routes=[Route("/h/{hid}", ok), Mount("/hm/{m}", routes=[Route("/z", ok)])])
    app = Starlette(
        routes=[
            Mount("/org/{org}", routes=[Route("/items", ok), Mount("/team/{team}", routes=team)]),
            Mount("/api/v1", routes=[Route("/users/{user_id}", ok)]),
            Mount("/mounted", app=plain_asgi),
            Host("{tenant}.example.com", app=hosted),
            Route("/items/{item_id}", ok),
        ]
    )
    if wrap:  # the middleware around the app rather than inside it
        return MetricsMiddleware(app, registry=registry)
    app.add_middleware(MetricsMiddleware, registry=registry)
    return app


def assert_no_raw_values(registry: CollectorRegistry, *raw: str) -> None:
    values = label_values(registry)
    assert not [v for v in values for r in raw if r in v], values


@pytest.mark.parametrize("wrap", [False, True], ids=["add_middleware", "wrapped"])
async def test_a_parameterised_mount_gives_its_template(
    registry: CollectorRegistry, wrap: bool
) -> None:
    async with client(starlette_app(registry, wrap=wrap)) as c:
        for org in ("acme", "globex", "initech"):
            assert (await c.get(f"/org/{org}/items")).status_code == 200
        assert (await c.get("/items/7")).status_code == 200
    assert request_counts(registry) == {
        ("GET", "/org/{org}/items", "200"): 3.0,
        ("GET", "/items/{item_id}", "200"): 1.0,
    }
    assert_no_raw_values(registry, "acme", "globex", "initech", "/items/7")


async def test_nested_mounts_give_every_level_of_the_template(registry: CollectorRegistry) -> None:
    async with client(starlette_app(registry)) as c:
        assert (await c.get("/org/acme/team/red/projects/12")).status_code == 200
        assert (await c.get("/org/umbrella/team/blue/projects/3")).status_code == 200
    assert request_counts(registry) == {
        ("GET", "/org/{org}/team/{team}/projects/{project_id:int}", "200"): 2.0
    }
    assert_no_raw_values(registry, "acme", "umbrella", "red", "blue", "/12", "/3")


async def test_a_404_under_a_mount_is_unmatched(registry: CollectorRegistry) -> None:
    async with client(starlette_app(registry)) as c:
        assert (await c.get("/api/v1/nope")).status_code == 404
        assert (await c.get("/org/acme/nope")).status_code == 404
        assert (await c.get("/org/acme/team/red/nope")).status_code == 404
    assert request_counts(registry) == {("GET", UNMATCHED_ROUTE, "404"): 3.0}
    assert_no_raw_values(registry, "/api/v1", "acme", "red", "nope")


async def test_a_mounted_app_without_routes_is_labeled_with_the_mount(
    registry: CollectorRegistry,
) -> None:
    """The Mount's own template, as starlette-exporter and the instrumentator label it."""
    async with client(starlette_app(registry)) as c:
        for path in ("/mounted/", "/mounted/a", "/mounted/a/b/c.css"):
            assert (await c.get(path)).status_code == 200
    assert request_counts(registry) == {("GET", "/mounted", "200"): 3.0}
    assert_no_raw_values(registry, "/a", "c.css")


async def test_host_routing_gives_the_path_template(registry: CollectorRegistry) -> None:
    app = starlette_app(registry)
    async with client(app) as c:
        c.base_url = "http://shop.example.com"
        assert (await c.get("/h/5")).status_code == 200
        assert (await c.get("/hm/9/z")).status_code == 200
        assert (await c.get("/hm/9/nope")).status_code == 404
    assert request_counts(registry) == {
        ("GET", "/h/{hid}", "200"): 1.0,
        ("GET", "/hm/{m}/z", "200"): 1.0,
        ("GET", UNMATCHED_ROUTE, "404"): 1.0,
    }
    assert_no_raw_values(registry, "shop", "/5", "/9")


def fastapi_app(registry: CollectorRegistry) -> FastAPI:
    users = APIRouter(prefix="/users")

    @users.get("/{user_id:int}")
    async def user(user_id: int) -> dict[str, int]:
        return {"user_id": user_id}

    repos = APIRouter(prefix="/repos/{repo}")

    @repos.get("/issues/{number}")
    async def issue(repo: str, number: int) -> dict[str, int]:
        return {"number": number}

    users.include_router(repos, prefix="/{user_id:int}")
    sub = FastAPI()

    @sub.get("/reports/{report_id}")
    async def report(report_id: str) -> dict[str, str]:
        return {"report": report_id}

    sub.include_router(users)
    app = FastAPI()
    app.include_router(users, prefix="/v2")
    app.mount("/tenants/{tenant}", sub)
    app.add_middleware(MetricsMiddleware, registry=registry)
    return app


async def test_fastapi_routers_and_mounted_apps_give_the_full_template(
    registry: CollectorRegistry,
) -> None:
    async with client(fastapi_app(registry)) as c:
        assert (await c.get("/v2/users/4")).status_code == 200
        assert (await c.get("/v2/users/4/repos/apytheus/issues/17")).status_code == 200
        assert (await c.get("/tenants/acme/reports/q3")).status_code == 200
        assert (await c.get("/tenants/acme/users/8")).status_code == 200
        assert (await c.get("/tenants/acme/users/8/repos/x/issues/2")).status_code == 200
        assert (await c.get("/tenants/acme/nope")).status_code == 404
        assert (await c.get("/v2/nope")).status_code == 404
    assert request_counts(registry) == {
        ("GET", "/v2/users/{user_id:int}", "200"): 1.0,
        ("GET", "/v2/users/{user_id:int}/repos/{repo}/issues/{number}", "200"): 1.0,
        ("GET", "/tenants/{tenant}/reports/{report_id}", "200"): 1.0,
        ("GET", "/tenants/{tenant}/users/{user_id:int}", "200"): 1.0,
        ("GET", "/tenants/{tenant}/users/{user_id:int}/repos/{repo}/issues/{number}", "200"): 1.0,
        ("GET", UNMATCHED_ROUTE, "404"): 2.0,
    }
    assert_no_raw_values(registry, "acme", "apytheus", "q3", "/4", "/8", "/17", "nope")


async def test_a_scanner_under_a_parameterised_mount_stays_bounded(
    registry: CollectorRegistry,
) -> None:
    rng = random.Random(23)
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=12)) for _ in range(50)]
    paths = [
        f"/org/{w}/items" if i % 2 else f"/org/{w}/team/{w[:4]}/{w[4:]}"
        for i, w in enumerate(words)
    ]
    async with client(starlette_app(registry)) as c:
        for path in paths:
            await c.get(path)
    assert request_counts(registry) == {
        ("GET", "/org/{org}/items", "200"): 25.0,
        ("GET", UNMATCHED_ROUTE, "404"): 25.0,
    }
    values = label_values(registry)
    assert not [v for v in values for w in words if w[:4] in v or w[4:] in v]
