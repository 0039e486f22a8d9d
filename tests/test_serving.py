"""Serving a registry: the ASGI app, the WSGI app and the threaded HTTP server."""

from __future__ import annotations

import gzip
import urllib.request
from collections.abc import Iterator
from wsgiref.util import setup_testing_defaults

import anyio
import httpx
import pytest

from apytheus import (
    OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS_CONTENT_TYPE,
    CollectorRegistry,
    Counter,
    make_asgi_app,
    make_wsgi_app,
    start_http_server,
)


@pytest.fixture
def filled(registry: CollectorRegistry) -> CollectorRegistry:
    Counter("served", "Requests served", ["path"], registry=registry).labels(path="/").inc(3)
    return registry


def client(registry: CollectorRegistry) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_asgi_app_serves_the_text_format_by_default(filled: CollectorRegistry) -> None:
    async with client(filled) as c:
        r = await c.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == PROMETHEUS_CONTENT_TYPE
    assert 'served_total{path="/"} 3.0' in r.text
    assert "# EOF" not in r.text


async def test_asgi_app_serves_openmetrics_when_accept_asks(filled: CollectorRegistry) -> None:
    async with client(filled) as c:
        r = await c.get("/", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"] == OPENMETRICS_CONTENT_TYPE
    assert r.text.endswith("# EOF\n")
    assert "served_created" in r.text


async def test_asgi_app_gzips_when_the_client_accepts_it(filled: CollectorRegistry) -> None:
    async with client(filled) as c:
        r = await c.get("/", headers={"accept-encoding": "gzip"})
        plain = await c.get("/", headers={"accept-encoding": "identity"})
    assert r.headers["content-encoding"] == "gzip"
    assert 'served_total{path="/"} 3.0' in r.text  # httpx decompressed it
    assert "content-encoding" not in plain.headers


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("GZIP; Q=0.5", True),
        ("deflate, x-gzip", True),
        ("identity, *;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000, *", False),  # refused by name: the wildcard does not bring it back
        ("*;q=0", False),
        ("deflate, br", False),
        ("gzip;q=lots", False),
        ("", False),
    ],
)
async def test_asgi_app_gzips_only_when_accept_encoding_gives_gzip_a_weight(
    filled: CollectorRegistry, accept_encoding: str, gzipped: bool
) -> None:
    async with client(filled) as c:
        r = await c.get("/", headers={"accept-encoding": accept_encoding})
    assert (r.headers.get("content-encoding") == "gzip") is gzipped
    assert 'served_total{path="/"} 3.0' in r.text


async def test_asgi_app_answers_head_without_body_and_refuses_post(
    filled: CollectorRegistry,
) -> None:
    async with client(filled) as c:
        head = await c.head("/")
        post = await c.post("/")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


def test_wsgi_app_serves_and_negotiates(filled: CollectorRegistry) -> None:
    app = make_wsgi_app(filled)
    seen: list[tuple[str, dict[str, str]]] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen.append((status, dict(headers)))

    environ: dict[str, object] = {}
    setup_testing_defaults(environ)
    environ["HTTP_ACCEPT"] = "application/openmetrics-text"
    environ["HTTP_ACCEPT_ENCODING"] = "gzip, deflate"
    body = gzip.decompress(b"".join(app(environ, start_response)))
    status, headers = seen[0]
    assert status == "200 OK"
    assert headers["Content-Type"] == OPENMETRICS_CONTENT_TYPE
    assert b'served_total{path="/"} 3.0' in body and body.endswith(b"# EOF\n")


@pytest.fixture
def server(filled: CollectorRegistry) -> Iterator[int]:
    srv, thread = start_http_server(0, addr="127.0.0.1", registry=filled)
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def test_start_http_server_serves_from_a_thread(server: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server}/metrics", timeout=5) as r:
        body = r.read().decode()
        assert r.headers["Content-Type"] == PROMETHEUS_CONTENT_TYPE
    assert 'served_total{path="/"} 3.0' in body


@pytest.fixture
def several(registry: CollectorRegistry) -> CollectorRegistry:
    Counter("a", "A", registry=registry).inc()
    Counter("b", "B", registry=registry).inc(2)
    Counter("c", "C", registry=registry).inc(3)
    return registry


async def test_name_filter_serves_only_the_asked_metrics(several: CollectorRegistry) -> None:
    async with client(several) as c:
        r = await c.get("/?name[]=a_total&name[]=c_total")
        everything = await c.get("/?name[]=")
    assert "a_total 1.0" in r.text and "c_total 3.0" in r.text
    assert "b_total" not in r.text
    assert "b_total 2.0" in everything.text  # an empty filter is no filter


async def test_malformed_query_strings_never_fail_the_scrape(several: CollectorRegistry) -> None:
    async with client(several) as c:
        for query in ("name[]=%ff%fe", "&&&==", "name[]=" + "x" * 30_000, "a=1&" * 5000):
            r = await c.get(f"/?{query}")
            assert r.status_code == 200


def test_wsgi_app_filters_by_name(several: CollectorRegistry) -> None:
    app = make_wsgi_app(several)
    environ: dict[str, object] = {}
    setup_testing_defaults(environ)
    environ["QUERY_STRING"] = "name[]=b_total"
    body = b"".join(app(environ, lambda status, headers: None)).decode()
    assert "b_total 2.0" in body and "a_total" not in body


async def test_async_serve_answers_scrapes_on_both_loops(filled: CollectorRegistry) -> None:
    from apytheus.exposition import serve

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, 0, "127.0.0.1", filled)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            text = await c.get("/metrics")
            om = await c.get("/metrics", headers={"accept": "application/openmetrics-text"})
            post = await c.post("/metrics")
        tg.cancel_scope.cancel()
    assert text.status_code == 200 and 'served_total{path="/"} 3.0' in text.text
    assert om.headers["content-type"] == OPENMETRICS_CONTENT_TYPE
    assert post.status_code == 405


async def test_async_serve_survives_garbage_and_silent_clients(filled: CollectorRegistry) -> None:
    from apytheus.exposition import serve

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, 0, "127.0.0.1", filled)
        silent = await anyio.connect_tcp("127.0.0.1", port)  # connects, never speaks
        garbage = await anyio.connect_tcp("127.0.0.1", port)
        await garbage.send(b"NONSENSE\r\n\r\n")
        answer = await garbage.receive()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            ok = await c.get("/metrics")
        await silent.aclose()
        await garbage.aclose()
        tg.cancel_scope.cancel()
    assert answer.startswith(b"HTTP/1.1 400")
    assert ok.status_code == 200
