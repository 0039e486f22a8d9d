"""Optional protection of the metrics endpoint (basic auth or a bearer token)."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request

import anyio
import httpx
import pytest

from apytheus import CollectorRegistry, Counter, make_asgi_app, serve, start_http_server

TOKEN = "s3cret-token"
BASIC = ("prometheus", "pa:ss wörd")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def filled(registry: CollectorRegistry) -> CollectorRegistry:
    Counter("jobs", "Jobs", registry=registry).inc()
    return registry


CASES = [
    (None, 401),
    ("Bearer wrong", 401),
    (f"Bearer {TOKEN}", 200),
    (f"bearer {TOKEN}", 401),
    (basic(*BASIC), 200),
    (basic("prometheus", "nope"), 401),
    ("Basic !!not-base64!!", 401),
    ("Bearer " + "x" * 10_000, 401),
]


async def test_asgi_app_requires_one_of_the_credentials(filled: CollectorRegistry) -> None:
    app = make_asgi_app(filled, bearer_token=TOKEN, basic_auth=BASIC)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for header, status in CASES:
            headers = {"authorization": header} if header else {}
            r = await client.get("/", headers=headers)
            assert r.status_code == status, header
            if status == 401:
                assert r.headers["www-authenticate"] == 'Basic realm="metrics"'
                assert "jobs_total" not in r.text
            else:
                assert "jobs_total 1.0" in r.text


async def test_async_serve_is_protected_too(filled: CollectorRegistry) -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve(
                0, "127.0.0.1", filled, bearer_token=TOKEN, task_status=task_status
            )
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            denied = await client.get("/metrics")
            allowed = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        tg.cancel_scope.cancel()
    assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
    assert allowed.status_code == 200 and "jobs_total 1.0" in allowed.text


def test_start_http_server_and_wsgi_app_are_protected(filled: CollectorRegistry) -> None:
    server, thread = start_http_server(0, addr="127.0.0.1", registry=filled, basic_auth=BASIC)
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url, timeout=5)
        assert denied.value.code == 401
        denied.value.close()
        request = urllib.request.Request(url, headers={"Authorization": basic(*BASIC)})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert b"jobs_total 1.0" in response.read()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("options", [{"bearer_token": ""}, {"basic_auth": ("a:b", "c")}])
def test_unusable_credentials_are_refused_when_the_app_is_made(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_asgi_app(**options)  # type: ignore[arg-type]
