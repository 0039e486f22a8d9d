"""Format negotiation: the Accept headers Prometheus sends, by q-value, on every server.

The headers are copied from Prometheus' source:
* 2.42 (scrape/scrape.go, ``scrapeAcceptHeader`` and ``scrapeAcceptHeaderWithProtobuf``);
* 3.x (scrape/scrape.go ``acceptHeader`` over config/config.go ``ScrapeProtocolsHeaders``,
  ``DefaultScrapeProtocols`` / ``DefaultProtoFirstScrapeProtocols``, escaping allow-utf-8).
"""

from __future__ import annotations

import urllib.request
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import anyio
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from apytheus import CollectorRegistry, Counter, Gauge
from apytheus.aiohttp import metrics_handler
from apytheus.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPE,
    arender,
    choose_format,
    make_asgi_app,
    make_wsgi_app,
    negotiate,
    render,
    serve,
    start_http_server,
)
from apytheus.middleware import MetricsMiddleware

PROTO = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
PROMETHEUS_2_42 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_2_42_NATIVE = (
    f"{PROTO},application/openmetrics-text;version=1.0.0;q=0.8,"
    "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
PROMETHEUS_3_NATIVE = (
    f"{PROTO};q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)
# Prometheus 3 with `scrape_protocols: [PrometheusText1.0.0]` (text only, UTF-8 names)
PROMETHEUS_3_TEXT = "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5"
OM_UTF8 = f"{OPENMETRICS_CONTENT_TYPE}; escaping=allow-utf-8"

TABLE = [
    (None, "text", PROMETHEUS_CONTENT_TYPE, "underscores"),
    ("", "text", PROMETHEUS_CONTENT_TYPE, "underscores"),
    (PROMETHEUS_2_42, "openmetrics", OPENMETRICS_CONTENT_TYPE, "underscores"),
    (PROMETHEUS_2_42_NATIVE, "protobuf", PROTOBUF_CONTENT_TYPE, "underscores"),
    (PROMETHEUS_3, "openmetrics", OM_UTF8, "allow-utf-8"),
    (PROMETHEUS_3_NATIVE, "protobuf", PROTOBUF_CONTENT_TYPE, "underscores"),
    (
        PROMETHEUS_3_TEXT,
        "text",
        "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8",
        "allow-utf-8",
    ),
    # q-values decide, not the order
    (f"text/plain;q=0.9,{PROTO};q=0.3", "text", PROMETHEUS_CONTENT_TYPE, "underscores"),
    (
        f"{PROTO};q=0.2,application/openmetrics-text;q=0.7",
        "openmetrics",
        OPENMETRICS_CONTENT_TYPE,
        "underscores",
    ),
    # equal weights: the more specific range, then the first listed
    ("*/*,application/openmetrics-text", "openmetrics", OPENMETRICS_CONTENT_TYPE, "underscores"),
    (
        "text/plain;version=0.0.4,application/openmetrics-text",
        "text",
        PROMETHEUS_CONTENT_TYPE,
        "underscores",
    ),
    # q=0 means "not this one"
    ("application/openmetrics-text;q=0,*/*", "text", PROMETHEUS_CONTENT_TYPE, "underscores"),
    # other escapings, and an unknown one (underscores, said in the Content-Type)
    (
        "application/openmetrics-text;version=1.0.0;escaping=dots",
        "openmetrics",
        f"{OPENMETRICS_CONTENT_TYPE}; escaping=dots",
        "dots",
    ),
    (
        "text/plain;version=1.0.0;escaping=values",
        "text",
        "text/plain; version=1.0.0; charset=utf-8; escaping=values",
        "values",
    ),
    (
        "text/plain;version=1.0.0;escaping=bogus",
        "text",
        "text/plain; version=1.0.0; charset=utf-8; escaping=underscores",
        "underscores",
    ),
    (f"{PROTO};escaping=allow-utf-8", "protobuf", PROTOBUF_CONTENT_TYPE, "allow-utf-8"),
    # text 0.0.4 cannot carry quoted names: its escaping parameter is not honoured
    (
        "text/plain;version=0.0.4;escaping=allow-utf-8",
        "text",
        PROMETHEUS_CONTENT_TYPE,
        "underscores",
    ),
    # what apytheus does not write: the next offer, else text 0.0.4
    ("application/openmetrics-text;version=2.0.0", "text", PROMETHEUS_CONTENT_TYPE, "underscores"),
    (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
        "text",
        PROMETHEUS_CONTENT_TYPE,
        "underscores",
    ),
    ("application/json", "text", PROMETHEUS_CONTENT_TYPE, "underscores"),
    (
        "text/html;q=abc,application/openmetrics-text;q=2",
        "text",
        PROMETHEUS_CONTENT_TYPE,
        "underscores",
    ),
    (";;,,=;q=;", "text", PROMETHEUS_CONTENT_TYPE, "underscores"),
    ("\x00\xff", "text", PROMETHEUS_CONTENT_TYPE, "underscores"),
]


@pytest.mark.parametrize(("accept", "kind", "content_type", "escaping"), TABLE)
def test_negotiation_table(accept: str | None, kind: str, content_type: str, escaping: str) -> None:
    found = negotiate(accept)
    assert (found.kind, found.content_type, found.escaping) == (kind, content_type, escaping)


def test_protobuf_can_be_turned_off() -> None:
    assert negotiate(PROMETHEUS_2_42_NATIVE, protobuf=False).kind == "openmetrics"
    assert negotiate(PROMETHEUS_3_NATIVE, protobuf=False).content_type == OM_UTF8
    assert negotiate(PROTO, protobuf=False).kind == "text"


def test_choose_format_still_works_and_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="render"):
        assert choose_format(PROMETHEUS_2_42) == (True, OPENMETRICS_CONTENT_TYPE)
    with pytest.warns(DeprecationWarning):
        assert choose_format(PROMETHEUS_2_42_NATIVE) == (True, OPENMETRICS_CONTENT_TYPE)
    with pytest.warns(DeprecationWarning):
        assert choose_format(None) == (False, PROMETHEUS_CONTENT_TYPE)


@pytest.fixture
def utf8(registry: CollectorRegistry) -> CollectorRegistry:
    Counter("http.requests", "Requests", ["http.method"], registry=registry).labels("GET").inc(2)
    Gauge("queue_size", "Queue", registry=registry).set(3)
    return registry


EXPECTED = {
    # (kind, escaping) -> lines the body has
    ("text", "underscores"): ['http_requests_total{http_method="GET"} 2.0', "queue_size 3.0"],
    ("openmetrics", "underscores"): [
        'http_requests_total{http_method="GET"} 2.0',
        "queue_size 3.0",
        "# EOF",
    ],
    ("openmetrics", "allow-utf-8"): [
        '{"http.requests_total","http.method"="GET"} 2.0',
        '# TYPE "http.requests" counter',
        "queue_size 3.0",
        "# EOF",
    ],
    ("text", "allow-utf-8"): [
        '{"http.requests_total","http.method"="GET"} 2.0',
        '# HELP "http.requests_total" Requests',
    ],
}


def check_body(accept: str | None, body: bytes, content_type: str) -> None:
    """The body is in the format `negotiate` picks for ``accept``, names escaped as it says."""
    fmt = negotiate(accept)
    assert content_type == fmt.content_type
    if fmt.kind == "protobuf":
        assert b"\n\x13http_requests_total" in body  # field 1 (name), 19 bytes: escaped
        assert b"http.requests" not in body
        return
    text = body.decode()
    for line in EXPECTED[(fmt.kind, fmt.escaping)]:
        assert line + "\n" in text, (line, text)


HEADERS = [None, PROMETHEUS_2_42, PROMETHEUS_2_42_NATIVE, PROMETHEUS_3, PROMETHEUS_3_TEXT]


@pytest.mark.parametrize("accept", HEADERS)
def test_render_answers_each_prometheus_in_its_format(
    utf8: CollectorRegistry, accept: str | None
) -> None:
    body, content_type = render(utf8, accept)
    check_body(accept, body, content_type)


@pytest.mark.parametrize("accept", HEADERS)
async def test_arender_gives_the_same_body_as_render(
    utf8: CollectorRegistry, accept: str | None
) -> None:
    assert await arender(utf8, accept) == render(utf8, accept)


def asgi_get(app: Any) -> Callable[[str | None], Any]:
    async def get(accept: str | None) -> tuple[bytes, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            r = await c.get("/metrics", headers={"accept": accept} if accept else {})
        assert r.status_code == 200
        return r.content, r.headers["content-type"]

    return get


async def test_every_server_negotiates_the_same_way(utf8: CollectorRegistry) -> None:
    """make_asgi_app, with the middleware around it, serve, and the WSGI app."""
    wsgi = make_wsgi_app(utf8)

    async def wsgi_get(accept: str | None) -> tuple[bytes, str]:
        environ: dict[str, Any] = {"PATH_INFO": "/metrics"}
        if accept:
            environ["HTTP_ACCEPT"] = accept
        setup_testing_defaults(environ)
        started: list[Any] = []
        body = b"".join(wsgi(environ, lambda status, headers: started.append(headers)))
        return body, dict(started[0])["Content-Type"]

    async def serve_get(accept: str | None) -> tuple[bytes, str]:
        async with anyio.create_task_group() as tg:
            port = await tg.start(serve, 0, "127.0.0.1", utf8)
            got = await asgi_get_url(f"http://127.0.0.1:{port}/metrics", accept)
            tg.cancel_scope.cancel()
        return got

    getters = {
        "make_asgi_app": asgi_get(make_asgi_app(utf8)),
        "middleware": asgi_get(MetricsMiddleware(make_asgi_app(utf8), registry=utf8)),
        "wsgi": wsgi_get,
        "serve": serve_get,
    }
    for name, get in getters.items():
        for accept in HEADERS:
            body, content_type = await get(accept)
            try:
                check_body(accept, body, content_type)
            except AssertionError as exc:
                raise AssertionError(f"{name} with Accept {accept!r}") from exc


async def asgi_get_url(url: str, accept: str | None) -> tuple[bytes, str]:
    async with httpx.AsyncClient() as c:
        r = await c.get(url, headers={"accept": accept} if accept else {})
    assert r.status_code == 200
    return r.content, r.headers["content-type"]


@pytest.fixture
def thread_server(utf8: CollectorRegistry) -> Iterator[int]:
    server, thread = start_http_server(0, "127.0.0.1", utf8)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize("accept", HEADERS)
def test_start_http_server_negotiates(thread_server: int, accept: str | None) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{thread_server}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as r:
        check_body(accept, r.read(), r.headers["Content-Type"])


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiohttp runs on asyncio only
async def test_the_aiohttp_handler_negotiates(utf8: CollectorRegistry) -> None:
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(utf8))
    async with TestClient(TestServer(app)) as client:
        for accept in HEADERS:
            r = await client.get("/metrics", headers={"Accept": accept} if accept else {})
            check_body(accept, await r.read(), r.headers["Content-Type"])


async def test_a_server_with_protobuf_off_answers_the_next_format(utf8: CollectorRegistry) -> None:
    body, content_type = await asgi_get(make_asgi_app(utf8, protobuf=False))(PROMETHEUS_2_42_NATIVE)
    assert content_type == OPENMETRICS_CONTENT_TYPE
    assert body.decode().endswith("# EOF\n")


def test_gzip_is_negotiated_as_before_for_protobuf(utf8: CollectorRegistry) -> None:
    wsgi = make_wsgi_app(utf8)
    environ: dict[str, Any] = {
        "PATH_INFO": "/metrics",
        "HTTP_ACCEPT": PROMETHEUS_3_NATIVE,
        "HTTP_ACCEPT_ENCODING": "gzip",
    }
    setup_testing_defaults(environ)
    started: list[Any] = []
    body = b"".join(wsgi(environ, lambda status, headers: started.append(headers)))
    headers = dict(started[0])
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == PROTOBUF_CONTENT_TYPE
    import gzip

    assert gzip.decompress(body) == render(utf8, PROMETHEUS_3_NATIVE)[0]


def test_no_deprecation_warning_from_the_servers(utf8: CollectorRegistry) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        render(utf8, PROMETHEUS_3)
