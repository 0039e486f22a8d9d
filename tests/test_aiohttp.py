"""apytheus.aiohttp on real aiohttp servers (TestServer on 127.0.0.1, real sockets).

aiohttp runs on asyncio only, so every async test here pins anyio's asyncio backend
instead of running on both loops (STYLE §6).
"""

from __future__ import annotations

import asyncio
import gc
import gzip
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp.web_app
import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis_server import RedisServer
from starlette.applications import Starlette

from apytheus import OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, CollectorRegistry, Counter
from apytheus.aiohttp import apytheus_cleanup_ctx, metrics_handler, metrics_middleware
from apytheus.backends import InProcessBackend, load_backend
from apytheus.backends.redis import RedisBackend
from apytheus.middleware import UNMATCHED_ROUTE, MetricsMiddleware

# aiohttp is asyncio-only: these tests cannot run on trio (all of them are async, so the
# mark applies to each).
pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio"])


async def item(request: web.Request) -> web.Response:
    return web.Response(text=f"item {request.match_info['item_id']}")


async def user(request: web.Request) -> web.Response:
    return web.Response(text=f"user {request.match_info['user_id']}")


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("handler failed")


async def forbidden(request: web.Request) -> web.Response:
    raise web.HTTPForbidden(text="no")


async def too_slow(request: web.Request) -> web.Response:
    raise asyncio.TimeoutError


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(3):
        await response.write(b"x" * 100)
    await response.write_eof()
    return response


async def anything(request: web.Request) -> web.Response:
    return web.Response(text=request.method)


@pytest.fixture(autouse=True)
def forget_served_apps() -> Iterator[None]:
    """Free each test's apps, and with them its registry and metrics, before the next test.

    Live metrics follow every later backend switch, so a later test's backend would see
    this test's series (test_backend_selection.py counts them; Redis tests would get their
    values in their keys). aiohttp keeps every app that served a request alive in a
    module-level LRU cache of middleware chains (``aiohttp.web_app._cached_build_middleware``),
    and an app's routes, server and middleware form reference cycles that only
    ``gc.collect()`` frees.
    """
    yield
    cache = getattr(aiohttp.web_app, "_cached_build_middleware", None)
    if cache is not None:
        cache.cache_clear()
    gc.collect()


def make_app(registry: CollectorRegistry, **options: Any) -> web.Application:
    app = web.Application(middlewares=[metrics_middleware(registry, **options)])
    app.router.add_get("/items/{item_id}", item)
    app.router.add_post("/echo", echo)
    app.router.add_get("/boom", boom)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_get("/slow", too_slow)
    app.router.add_get("/stream", stream)
    app.router.add_route("*", "/any", anything)
    app.router.add_get("/metrics", metrics_handler(registry))
    api = web.Application()
    api.router.add_get("/users/{user_id}", user)
    app.add_subapp("/api/v1", api)
    return app


@asynccontextmanager
async def serve(
    app: web.Application, **client_options: Any
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(app), **client_options) as client:
        yield client


def count(registry: CollectorRegistry, **labels: str) -> float | None:
    return registry.get_sample_value("http_request_duration_seconds_count", labels)


# -- metrics_handler ---------------------------------------------------------------------


async def test_handler_serves_the_text_format_by_default(registry: CollectorRegistry) -> None:
    Counter("hits", "Hits", registry=registry).inc(2)
    async with serve(make_app(registry)) as client:
        response = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert response.status == 200
        assert response.headers["Content-Type"] == PROMETHEUS_CONTENT_TYPE
        assert "Content-Encoding" not in response.headers
        text = await response.text()
    assert "# TYPE hits_total counter\nhits_total 2.0\n" in text
    assert "# EOF" not in text


async def test_handler_serves_openmetrics_when_accepted(registry: CollectorRegistry) -> None:
    Counter("hits", "Hits", registry=registry).inc()
    accept = "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"
    async with serve(make_app(registry)) as client:
        response = await client.get("/metrics", headers={"Accept": accept})
        assert response.headers["Content-Type"] == OPENMETRICS_CONTENT_TYPE
        text = await response.text()
    assert "# TYPE hits counter\nhits_total 1.0\n" in text
    assert text.endswith("# EOF\n")


async def test_handler_gzips_when_the_client_accepts_it(registry: CollectorRegistry) -> None:
    Counter("hits", "Hits", registry=registry).inc()
    async with serve(make_app(registry), auto_decompress=False) as client:
        response = await client.get("/metrics", headers={"Accept-Encoding": "deflate, GZIP"})
        assert response.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(await response.read()).decode()
    assert "hits_total 1.0" in body


async def test_handler_answers_head_without_a_body(registry: CollectorRegistry) -> None:
    async with serve(make_app(registry)) as client:
        response = await client.head("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"] == PROMETHEUS_CONTENT_TYPE
        assert await response.read() == b""


async def test_handler_answers_503_when_redis_is_unreachable(
    registry: CollectorRegistry, free_tcp_port: int
) -> None:
    """Nothing listens on the port: collecting raises BackendUnavailable, the scrape gets 503."""
    gc.collect()  # metrics of earlier tests would follow the switch
    backend = load_backend(
        RedisBackend, {"url": f"redis://127.0.0.1:{free_tcp_port}", "flush_interval": 60}
    )
    assert isinstance(backend, RedisBackend)
    try:
        Counter("hits", "Hits", registry=registry).inc()
        async with serve(make_app(registry)) as client:
            response = await client.get("/metrics")
            assert response.status == 503
            assert "cannot read metrics from Redis" in await response.text()
    finally:
        backend.close(flush=False)
        load_backend(InProcessBackend)


# -- metrics_middleware ------------------------------------------------------------------


async def test_route_is_the_canonical_path_not_the_raw_path(registry: CollectorRegistry) -> None:
    async with serve(make_app(registry)) as client:
        for i in range(5):
            assert (await client.get(f"/items/{i}")).status == 200
    assert count(registry, method="GET", route="/items/{item_id}", status_code="200") == 5.0
    assert "/items/3" not in "".join(str(s) for s in registry.collect())


async def test_sub_app_routes_include_the_prefix(registry: CollectorRegistry) -> None:
    async with serve(make_app(registry)) as client:
        assert (await client.get("/api/v1/users/42")).status == 200
    assert count(registry, method="GET", route="/api/v1/users/{user_id}", status_code="200") == 1


async def test_unmatched_requests_collapse_into_one_route(registry: CollectorRegistry) -> None:
    async with serve(make_app(registry)) as client:
        for path in ("/wp-admin", "/.env", "/x/y/z"):
            assert (await client.get(path)).status == 404
        assert (await client.delete("/items/1")).status == 405
    assert count(registry, method="GET", route=UNMATCHED_ROUTE, status_code="404") == 3.0
    assert count(registry, method="DELETE", route=UNMATCHED_ROUTE, status_code="405") == 1.0


async def test_an_exception_is_recorded_as_500_and_goes_on(registry: CollectorRegistry) -> None:
    async with serve(make_app(registry)) as client:
        assert (await client.get("/boom")).status == 500  # aiohttp saw the exception
    assert count(registry, method="GET", route="/boom", status_code="500") == 1.0
    assert registry.get_sample_value("http_requests_in_progress", {"method": "GET"}) == 0.0


async def test_a_raised_http_exception_is_recorded_with_its_status(
    registry: CollectorRegistry,
) -> None:
    async with serve(make_app(registry)) as client:
        response = await client.get("/forbidden")
        assert (response.status, await response.text()) == (403, "no")
    labels = {"method": "GET", "route": "/forbidden", "status_code": "403"}
    assert registry.get_sample_value("http_request_duration_seconds_count", labels) == 1.0
    assert registry.get_sample_value("http_response_size_bytes_sum", labels) == 2.0


async def test_a_timeout_is_recorded_as_504_as_aiohttp_answers(
    registry: CollectorRegistry,
) -> None:
    async with serve(make_app(registry)) as client:
        assert (await client.get("/slow")).status == 504
    assert count(registry, method="GET", route="/slow", status_code="504") == 1.0


async def test_sizes_are_the_request_and_response_bodies(registry: CollectorRegistry) -> None:
    async with serve(make_app(registry)) as client:
        assert await (await client.post("/echo", data=b"hello")).read() == b"hello"
        assert len(await (await client.get("/stream")).read()) == 300
    labels = {"method": "POST", "route": "/echo", "status_code": "200"}
    assert registry.get_sample_value("http_request_size_bytes_sum", labels) == 5.0
    assert registry.get_sample_value("http_response_size_bytes_sum", labels) == 5.0
    # a chunked stream has no length known to the middleware: documented as 0
    labels = {"method": "GET", "route": "/stream", "status_code": "200"}
    assert registry.get_sample_value("http_response_size_bytes_sum", labels) == 0.0


async def test_duration_is_measured_with_the_library_clock(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter(range(100))
    monkeypatch.setattr("apytheus.aiohttp.clock", lambda: float(next(ticks)) * 0.5)
    async with serve(make_app(registry)) as client:
        await client.get("/items/1")
    labels = {"method": "GET", "route": "/items/{item_id}", "status_code": "200"}
    assert registry.get_sample_value("http_request_duration_seconds_sum", labels) == 0.5


async def test_excluded_paths_are_not_recorded(registry: CollectorRegistry) -> None:
    async with serve(make_app(registry, excluded_paths=["/metrics", "/items/.*"])) as client:
        await client.get("/metrics")
        await client.get("/items/1")
    assert count(registry, method="GET", route="/metrics", status_code="200") is None
    assert count(registry, method="GET", route="/items/{item_id}", status_code="200") is None


async def test_status_codes_can_be_grouped(registry: CollectorRegistry) -> None:
    async with serve(make_app(registry, group_status_codes=True)) as client:
        await client.get("/items/1")
        await client.get("/nope")
    assert count(registry, method="GET", route="/items/{item_id}", status_code="2xx") == 1.0
    assert count(registry, method="GET", route=UNMATCHED_ROUTE, status_code="4xx") == 1.0


async def test_unknown_methods_are_labeled_other(registry: CollectorRegistry) -> None:
    async with serve(make_app(registry)) as client:
        # a WebDAV method: aiohttp's parser knows it, MetricsMiddleware's list does not
        assert await (await client.request("PROPFIND", "/any")).text() == "PROPFIND"
    assert count(registry, method="OTHER", route="/any", status_code="200") == 1.0
    assert registry.get_sample_value("http_requests_in_progress", {"method": "OTHER"}) == 0.0


async def test_requests_in_progress_go_up_then_back_to_zero(registry: CollectorRegistry) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def wait(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.Response(text="done")

    app = make_app(registry)
    app.router.add_get("/wait", wait)
    async with serve(app) as client:
        pending = asyncio.ensure_future(client.get("/wait"))
        await entered.wait()
        assert registry.get_sample_value("http_requests_in_progress", {"method": "GET"}) == 1.0
        release.set()
        assert (await pending).status == 200
    assert registry.get_sample_value("http_requests_in_progress", {"method": "GET"}) == 0.0


async def test_aiohttp_and_asgi_middlewares_share_one_registrys_metrics(
    registry: CollectorRegistry,
) -> None:
    """No duplicate-metric error: both record into the same four metrics."""
    metrics_middleware(registry)
    metrics_middleware(registry)
    asgi = MetricsMiddleware(Starlette(), registry=registry)
    assert sorted(m.name for m in registry.collect()) == [
        "http_request_duration_seconds",
        "http_request_size_bytes",
        "http_requests_in_progress",
        "http_response_size_bytes",
    ]
    assert asgi.metrics.duration.name == "http_request_duration_seconds"
    with pytest.raises(ValueError, match="extra labels"):
        MetricsMiddleware(
            Starlette(), registry=registry, extra_labels=lambda s: {}, extra_label_names=["x"]
        )


# -- apytheus_cleanup_ctx ----------------------------------------------------------------


@pytest.fixture
def redis_flushed_by_lifespan_only(
    redis_server: RedisServer, key_prefix: str
) -> Iterator[RedisBackend]:
    """The Redis backend, with its thread flusher stopped so only a lifespan flushes."""
    gc.collect()  # metrics of earlier tests would follow the switch and flush here too
    backend = load_backend(
        RedisBackend, {"url": redis_server.url, "key_prefix": key_prefix, "flush_interval": 0.05}
    )
    assert isinstance(backend, RedisBackend)
    backend._flusher.stop_thread()
    try:
        yield backend
    finally:
        backend.close()
        load_backend(InProcessBackend)


async def test_cleanup_ctx_runs_the_flusher_and_flushes_on_cleanup(
    redis_flushed_by_lifespan_only: RedisBackend,
    redis_server: RedisServer,
    key_prefix: str,
    registry: CollectorRegistry,
) -> None:
    client = redis_server.client()
    key = f"{{{key_prefix}|ticks}}:v"
    ticks = Counter("ticks", "Ticks", registry=registry)
    app = make_app(registry)
    app.cleanup_ctx.append(apytheus_cleanup_ctx)
    async with serve(app) as http:
        ticks.inc()
        with anyio.fail_after(10):
            while client.hget(key, "[]") != b"1":  # noqa: ASYNC110 - polls Redis
                await asyncio.sleep(0.02)
        ticks.inc(2)
        assert (await http.get("/items/1")).status == 200
    assert client.hget(key, "[]") == b"3"  # the final flush at cleanup


async def test_cleanup_ctx_allows_startup_and_cleanup_in_different_tasks(
    redis_flushed_by_lifespan_only: RedisBackend,
    redis_server: RedisServer,
    key_prefix: str,
    registry: CollectorRegistry,
) -> None:
    """As pytest fixtures do: the lifespan's task group is not tied to aiohttp's tasks."""
    ticks = Counter("ticks", "Ticks", registry=registry)
    app = web.Application()
    app.cleanup_ctx.append(apytheus_cleanup_ctx)
    runner = web.AppRunner(app)
    await asyncio.create_task(runner.setup())
    ticks.inc(4)
    await asyncio.create_task(runner.cleanup())
    assert redis_server.client().hget(f"{{{key_prefix}|ticks}}:v", "[]") == b"4"
