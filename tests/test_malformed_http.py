"""Malformed HTTP: the metrics app, the middleware and ``serve()`` never answer 5xx.

Each bad request gets a 4xx or a normal response (never a 500, never a crash),
and a good request right after it is served as usual. The ASGI apps are driven
with raw ASGI calls (scopes with keys missing, bodies that contradict their
``Content-Length``, clients that disconnect) and through httpx; ``serve()`` with
raw sockets. Every async test runs on asyncio and on trio.
"""

from __future__ import annotations

import gc
import gzip
import socket
import struct
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from anyio.abc import SocketAttribute
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics_text,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus_text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from apytheus import (
    CollectorRegistry,
    Counter,
    generate_metrics,
    make_asgi_app,
    start_http_server,
)
from apytheus.exposition import serve
from apytheus.middleware import METHODS, UNMATCHED_ROUTE, MetricsMiddleware

Message = MutableMapping[str, Any]
Scope = dict[str, Any]

MEGABYTE = 1 << 20
GOOD_LINE = 'served_total{path="/"} 3.0'


@pytest.fixture
def filled(registry: CollectorRegistry) -> CollectorRegistry:
    Counter("served", "Requests served", ["path"], registry=registry).labels(path="/").inc(3)
    return registry


# -- raw ASGI ----------------------------------------------------------------------


def http_scope(**changes: Any) -> Scope:
    """A complete HTTP scope with ``changes`` (a value of ``...`` removes the key)."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/metrics",
        "raw_path": b"/metrics",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    for key, value in changes.items():
        if value is ...:
            scope.pop(key, None)
        else:
            scope[key] = value
    return scope


async def call(app: Any, scope: Scope, incoming: list[Message] | None = None) -> list[Message]:
    """Run one ASGI request; ``receive`` gives ``incoming``, then ``http.disconnect``."""
    queue = list(incoming or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[Message] = []

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint()
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(dict(message))

    with anyio.fail_after(10):
        await app(scope, receive, send)
    return sent


def response(sent: list[Message]) -> tuple[int, dict[bytes, bytes], bytes]:
    """Status, headers and body of a complete ASGI response."""
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert bodies and not bodies[-1].get("more_body", False), sent
    headers = {bytes(k).lower(): bytes(v) for k, v in starts[0].get("headers", [])}
    return int(starts[0]["status"]), headers, b"".join(m.get("body", b"") for m in bodies)


def check_metrics_response(
    sent: list[Message], method: str = "GET", openmetrics: bool | None = None
) -> int:
    """A 4xx, or a 200 whose body the oracle parses; returns the status."""
    status, headers, body = response(sent)
    assert status == 200 or 400 <= status < 500, (status, body[:200])
    if status == 200 and method == "GET":
        assert int(headers[b"content-length"]) == len(body)
        if headers.get(b"content-encoding") == b"gzip":
            body = gzip.decompress(body)
        text = body.decode()
        om = headers[b"content-type"].startswith(b"application/openmetrics-text")
        if openmetrics is not None:
            assert om == openmetrics
        list((parse_openmetrics_text if om else parse_prometheus_text)(text))
    return status


async def assert_still_serving(app: Any) -> None:
    status, _, body = response(await call(app, http_scope()))
    assert status == 200 and GOOD_LINE in body.decode()


MANY_NAMES = b"&".join(b"name[]=m%d" % i for i in range(5000))
BAD_HEADERS: dict[str, list[tuple[bytes, bytes]]] = {
    "accept-garbage": [(b"accept", b"\x00\x01garbage;;;q=abc,,,/*/*")],
    "accept-huge": [(b"accept", b"text/plain," * (MEGABYTE // 11))],
    "accept-non-ascii": [(b"accept", "application/openmetrics-text; é=ü".encode())],
    "accept-latin1-bytes": [(b"accept", b"\xff\xfe\xfd")],
    "accept-empty": [(b"accept", b"")],
    "accept-twice": [(b"accept", b"text/plain"), (b"accept", b"application/openmetrics-text")],
    "accept-encoding-garbage": [(b"accept-encoding", b"\xff;q=\x00, gzip;;;")],
    "accept-encoding-huge": [(b"accept-encoding", b"br," * (MEGABYTE // 3))],
    "accept-encoding-gzip-refused": [(b"accept-encoding", b"gzip;q=0")],
    "authorization-garbage": [(b"authorization", b"\xff\xfe Basic !!!")],
    "header-name-empty": [(b"", b"")],
    "header-name-binary": [(b"\xff\x00", b"\xff\x00")],
    "content-length-lies": [(b"content-length", b"1000000")],
    "content-length-garbage": [(b"content-length", b"-5, abc")],
    "thousands-of-headers": [(b"x-h%d" % i, b"v") for i in range(10_000)],
}
BAD_SCOPES: dict[str, Scope] = {
    **{name: http_scope(headers=headers) for name, headers in BAD_HEADERS.items()},
    "only-the-type": {"type": "http"},
    "no-headers": http_scope(headers=...),
    "no-query-string": http_scope(query_string=...),
    "no-method": http_scope(method=...),
    "no-path": http_scope(path=..., raw_path=...),
    "query-huge": http_scope(query_string=b"x=" + b"y" * MEGABYTE),
    "query-percent-garbage": http_scope(query_string=b"name[]=%ff%fe%00%zz&name[]=%%%&name[]"),
    "query-binary": http_scope(query_string=b"name[]=\xff\xfe\x00&\xff=\xff"),
    "query-thousands-of-names": http_scope(query_string=MANY_NAMES),
    "query-name-huge": http_scope(query_string=b"name[]=" + b"n" * MEGABYTE),
    "query-only-separators": http_scope(query_string=b"&&&===&;;;"),
    "path-traversal": http_scope(path="/../../etc/passwd", raw_path=b"/../../etc/passwd"),
    "path-binary": http_scope(path="/\udcff\x00", raw_path=b"/\xff\x00"),
    "http-version-odd": http_scope(http_version="0.9"),
    "head": http_scope(method="HEAD"),
}
ODD_METHODS = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW", "", "get", "GÉT", "M" * 10_000]


@pytest.mark.parametrize("name", list(BAD_SCOPES))
async def test_metrics_app_answers_bad_requests_without_5xx(
    filled: CollectorRegistry, name: str
) -> None:
    app = make_asgi_app(filled)
    scope = BAD_SCOPES[name]
    sent = await call(app, scope)
    check_metrics_response(sent, scope.get("method", "GET"))
    await assert_still_serving(app)


async def test_metrics_app_negotiates_from_a_garbled_accept_header(
    filled: CollectorRegistry,
) -> None:
    app = make_asgi_app(filled)
    garbled = [(b"accept", b"\xff, application/openmetrics-text;;version=1.0.0, */*")]
    assert check_metrics_response(await call(app, http_scope(headers=garbled)), "GET", True)
    # a malformed q-value makes its media type no offer: the rest decides
    bad_weight = [(b"accept", b"\xff, application/openmetrics-text;;q=\x00, */*")]
    assert check_metrics_response(await call(app, http_scope(headers=bad_weight)), "GET", False)
    plain = [(b"accept", b"\xff\xfe, text/html")]
    assert check_metrics_response(await call(app, http_scope(headers=plain)), "GET", False)


async def test_thousands_of_name_filters_serve_everything_or_the_asked_ones(
    filled: CollectorRegistry,
) -> None:
    app = make_asgi_app(filled)
    for query in (MANY_NAMES, MANY_NAMES + b"&name[]=served_total", b"name[]=served_total"):
        status, _, body = response(await call(app, http_scope(query_string=query)))
        assert status == 200 and GOOD_LINE in body.decode()
    status, _, body = response(await call(app, http_scope(query_string=b"name[]=nope")))
    assert status == 200 and body == b""


@pytest.mark.parametrize("method", ODD_METHODS)
async def test_metrics_app_refuses_odd_methods_with_405(
    filled: CollectorRegistry, method: str
) -> None:
    app = make_asgi_app(filled)
    status, headers, _ = response(await call(app, http_scope(method=method)))
    assert status == 405 and headers[b"allow"] == b"GET, HEAD"
    await assert_still_serving(app)


@pytest.mark.parametrize(
    "incoming",
    [
        [{"type": "http.disconnect"}],
        [
            {"type": "http.request", "body": b"x" * 10, "more_body": True},
            {"type": "http.disconnect"},
        ],
        [{"type": "http.request", "body": b"x" * MEGABYTE, "more_body": False}],
        [{"type": "garbage"}],
    ],
    ids=["disconnect-at-once", "disconnect-mid-body", "unexpected-body", "unknown-message"],
)
async def test_metrics_app_ignores_what_the_client_sends_or_does_not(
    filled: CollectorRegistry, incoming: list[Message]
) -> None:
    app = make_asgi_app(filled)
    sent = await call(app, http_scope(headers=[(b"content-length", b"99")]), incoming)
    check_metrics_response(sent)
    await assert_still_serving(app)


@pytest.mark.parametrize(
    "authorization",
    [
        b"",
        b"Bearer",
        b"Bearer ",
        b"Bearer wrong",
        b"Bearer s3cret" + b"x" * MEGABYTE,
        b"Bearer \xff\xfe\x00",
        b"Basic !!!not-base64!!!",
        b"Basic " + b"A" * 10_001,
        "Bearer s3crét".encode(),
    ],
)
async def test_protected_app_answers_bad_credentials_with_401(
    filled: CollectorRegistry, authorization: bytes
) -> None:
    app = make_asgi_app(filled, bearer_token="s3cret")
    sent = await call(app, http_scope(headers=[(b"authorization", authorization)]))
    status, headers, _ = response(sent)
    assert status == 401 and headers[b"www-authenticate"] == b"Bearer"
    good = await call(app, http_scope(headers=[(b"authorization", b"Bearer s3cret")]))
    assert response(good)[0] == 200 and GOOD_LINE in response(good)[2].decode()


@pytest.mark.parametrize(
    "scope_type", ["websocket", "lifespan-garbage", "unknown"], ids=lambda s: str(s)
)
async def test_metrics_app_ignores_other_connection_types(
    filled: CollectorRegistry, scope_type: str
) -> None:
    app = make_asgi_app(filled)
    if scope_type == "lifespan-garbage":
        sent = await call(app, {"type": "lifespan"}, [{"type": "garbage"}])
    else:
        sent = await call(app, {"type": scope_type, "path": "/metrics"}, [{"type": "x"}])
    assert not [m for m in sent if m.get("status", 0) >= 500], sent
    await assert_still_serving(app)


async def test_metrics_app_through_httpx_with_bad_headers_and_queries(
    filled: CollectorRegistry,
) -> None:
    transport = httpx.ASGITransport(app=make_asgi_app(filled))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        requests: list[Callable[[], Awaitable[httpx.Response]]] = [
            lambda: client.get("/metrics", headers={b"accept": b"\xff\xfe garbage"}),
            lambda: client.get("/metrics", headers={"accept": "x" * MEGABYTE}),
            lambda: client.get("/metrics", params=[("name[]", f"m{i}") for i in range(3000)]),
            lambda: client.get("/metrics?name[]=%ff%fe%zz&name[]=%00"),
            lambda: client.get("/metrics?" + "a" * 60_000),  # httpx allows 64 KiB URLs
            lambda: client.request("BREW", "/metrics"),
            lambda: client.post("/metrics", content=b"x" * MEGABYTE),
            lambda: client.get("/metrics", headers={"content-length": "12345"}),
        ]
        for request in requests:
            r = await request()
            assert r.status_code in (200, 405), r.status_code
            if r.status_code == 200:
                list(parse_prometheus_text(r.text))
            good = await client.get("/metrics")
            assert good.status_code == 200 and GOOD_LINE in good.text


# -- the middleware ----------------------------------------------------------------


async def echo(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """A raw ASGI app: reads the body and sends it back; says nothing to a gone client."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return  # nobody to answer (as servers do: no response is sent)
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def series(registry: CollectorRegistry) -> list[dict[str, str]]:
    """The label sets of the middleware's duration histogram."""
    found = []
    for family in parse_prometheus_text(generate_metrics(registry)):
        if family.name == "http_request_duration_seconds":
            found += [dict(s.labels) for s in family.samples if s.name.endswith("_count")]
    return found


def recorded_statuses(registry: CollectorRegistry) -> set[str]:
    return {labels["status_code"] for labels in series(registry)}


async def assert_middleware_still_records(app: Any, registry: CollectorRegistry) -> None:
    sent = await call(
        app,
        app_scope(method="POST"),
        [{"type": "http.request", "body": b"ok", "more_body": False}],
    )
    assert response(sent)[:1] == (200,) and response(sent)[2] == b"ok"
    good = {"method": "POST", "route": UNMATCHED_ROUTE, "status_code": "200"}
    assert registry.get_sample_value("http_request_size_bytes_count", good)


def app_scope(**changes: Any) -> Scope:
    """A scope for a path the middleware records (it skips ``/metrics`` by default)."""
    return http_scope(**{"path": "/app", "raw_path": b"/app", **changes})


MIDDLEWARE_SCOPES: dict[str, Scope] = {
    "only-the-type": {"type": "http"},
    "no-headers": app_scope(headers=...),
    "no-method": app_scope(method=...),
    "no-path": app_scope(path=..., raw_path=...),
    "no-root-path": app_scope(root_path=...),
    "huge-headers": app_scope(headers=[(b"x-big", b"x" * MEGABYTE)]),
    "binary-headers": app_scope(headers=[(b"\xff\x00", b"\xff\x00"), (b"", b"")]),
    "huge-query": app_scope(query_string=b"q=" + b"x" * MEGABYTE),
    "binary-path": app_scope(path="/\udcff\x00", raw_path=b"/\xff\x00"),
    "route-not-a-route": app_scope(route="not a route object"),
    "content-length-lies": app_scope(headers=[(b"content-length", b"999999")]),
    **{f"method-{m[:12]}": app_scope(method=m) for m in ODD_METHODS},
}


@pytest.mark.parametrize("name", list(MIDDLEWARE_SCOPES))
async def test_middleware_records_bad_requests_without_5xx(
    registry: CollectorRegistry, name: str
) -> None:
    app = MetricsMiddleware(echo, registry=registry)
    sent = await call(app, MIDDLEWARE_SCOPES[name])
    assert response(sent)[0] == 200
    assert recorded_statuses(registry) == {"200"}, series(registry)
    assert {s["method"] for s in series(registry)} <= METHODS | {"OTHER"}
    await assert_middleware_still_records(app, registry)


async def test_middleware_counts_the_bytes_received_not_the_content_length(
    registry: CollectorRegistry,
) -> None:
    app = MetricsMiddleware(echo, registry=registry)
    for claimed, chunks in ((b"999999", [b"abcde"]), (b"0", [b"0123", b"456789"]), (b"x", [b""])):
        incoming: list[Message] = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        scope = app_scope(method="PUT", headers=[(b"content-length", claimed)])
        assert response(await call(app, scope, incoming))[2] == b"".join(chunks)
    labels = {"method": "PUT", "route": UNMATCHED_ROUTE, "status_code": "200"}
    assert registry.get_sample_value("http_request_size_bytes_sum", labels) == 15.0
    assert registry.get_sample_value("http_request_size_bytes_count", labels) == 3.0


@pytest.mark.parametrize(
    "incoming",
    [
        [{"type": "http.disconnect"}],
        [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}],
    ],
    ids=["before-the-body", "mid-body"],
)
async def test_a_client_that_disconnects_is_not_recorded_as_a_server_error(
    registry: CollectorRegistry, incoming: list[Message]
) -> None:
    """The app answered nothing because nobody was left to answer: no 5xx happened
    (an ASGI server sends no 500 to a gone client either)."""
    app = MetricsMiddleware(echo, registry=registry)
    scope = app_scope(method="POST", headers=[(b"content-length", b"100")])
    sent = await call(app, scope, incoming)
    assert not [m for m in sent if m["type"] == "http.response.start"]
    assert not {s for s in recorded_statuses(registry) if s.startswith("5")}, series(registry)
    assert registry.get_sample_value("http_requests_in_progress", {"method": "POST"}) == 0.0
    await assert_middleware_still_records(app, registry)


async def test_garbage_methods_and_paths_keep_the_series_bounded(
    registry: CollectorRegistry,
) -> None:
    app = MetricsMiddleware(echo, registry=registry)
    for i in range(500):
        method = f"M{i}" if i % 2 else "GET"
        path = f"/{i}/%ff/../{'x' * i}"
        await call(app, http_scope(method=method, path=path, raw_path=path.encode()))
    assert sorted((s["method"], s["route"]) for s in series(registry)) == [
        ("GET", UNMATCHED_ROUTE),
        ("OTHER", UNMATCHED_ROUTE),
    ]


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def test_middleware_on_starlette_through_httpx(registry: CollectorRegistry) -> None:
    inner = Starlette(routes=[Route("/hello/{name}", hello)])
    app = MetricsMiddleware(inner, registry=registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        requests: list[Callable[[], Awaitable[httpx.Response]]] = [
            lambda: client.request("BREW", "/hello/x"),
            lambda: client.get("/hello/%ff%fe"),
            lambda: client.get("/hello/" + "x" * 60_000),
            lambda: client.get("/%00/../../etc/passwd"),
            lambda: client.get("/hello/x", headers={"x-big": "x" * MEGABYTE}),
            lambda: client.get("/hello/x?" + "&".join(f"name[]={i}" for i in range(5000))),
            lambda: client.post("/hello/x", content=b"x" * MEGABYTE),
        ]
        for request in requests:
            r = await request()
            assert r.status_code < 500, r.status_code
            good = await client.get("/hello/world")
            assert good.status_code == 200 and good.text == "hello"
    assert not {s for s in recorded_statuses(registry) if s.startswith("5")}
    routes = {s["route"] for s in series(registry)}
    assert routes <= {"/hello/{name}", UNMATCHED_ROUTE}


# -- serve(): raw sockets -------------------------------------------------------------


@asynccontextmanager
async def serving(registry: CollectorRegistry) -> AsyncIterator[int]:
    """``serve()`` on a free port; if it dies, the ``async with`` raises what killed it.

    (A task group in the test, not in a fixture: a fixture whose server died would
    leave its teardown hanging on trio.)
    """
    try:
        async with anyio.create_task_group() as tg:
            port: int = await tg.start(serve, 0, "127.0.0.1", registry)
            yield port
            tg.cancel_scope.cancel()
    except BaseException:
        # The server died, and this test fails for it: close what it left open now,
        # so that no later test gets the ResourceWarning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        raise


async def exchange(port: int, data: bytes, *, eof: bool = True) -> bytes:
    """Send ``data`` and read until the server closes (a reset ends what was read)."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        if eof:
            await stream.send_eof()
        chunks: list[bytes] = []
        with anyio.fail_after(10):
            while chunk := await next_chunk(stream):
                chunks.append(chunk)
        return b"".join(chunks)


async def next_chunk(stream: anyio.abc.SocketStream) -> bytes:
    """The next bytes received, or b"" at the end (a reset after the answer ends it too)."""
    try:
        return await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return b""


async def get_ok(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        with anyio.fail_after(10):
            r = await client.get("/metrics")
    assert r.status_code == 200 and GOOD_LINE in r.text


def status_of(answer: bytes) -> int:
    line = answer.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), answer[:200]
    return int(line.split()[1])


HEADERS_20KB = b"".join(b"X-Header-%05d: %s\r\n" % (i, b"v" * 20) for i in range(550))
RAW_REQUESTS: dict[str, tuple[bytes, set[int]]] = {
    "garbage-request-line": (b"NONSENSE\r\n\r\n", {400}),
    "two-part-request-line": (b"GET /metrics\r\n\r\n", {400}),
    "empty-request-line": (b"\r\n\r\n", {400}),
    "binary-request-line": (b"\x00\xff\x16\x03\x01\r\n\r\n", {400}),
    "header-without-colon": (b"GET /metrics HTTP/1.1\r\nNoColonHere\r\n\r\n", {200, 400}),
    "headers-20KB": (b"GET /metrics HTTP/1.1\r\n" + HEADERS_20KB + b"\r\n", {400, 431}),
    "one-20KB-header": (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20_480 + b"\r\n\r\n", {400, 431}),
    "odd-method": (b"BREW /metrics HTTP/1.1\r\n\r\n", {405}),
    "non-ascii-method": (b"G\xc9T /metrics HTTP/1.1\r\n\r\n", {405}),
    "lowercase-method": (b"get /metrics HTTP/1.1\r\n\r\n", {200, 405}),
    "non-ascii-target": (b"GET /\xff\xfe?name[]=\xff HTTP/1.1\r\n\r\n", {200}),
    "percent-garbage-query": (b"GET /?name[]=%ff%zz&name[]=%%%00 HTTP/1.1\r\n\r\n", {200}),
    "huge-query": (b"GET /?" + b"name[]=x&" * 1500 + b" HTTP/1.1\r\n\r\n", {200, 400, 414}),
    "accept-garbage": (b"GET / HTTP/1.1\r\nAccept: \xff\xfe\x00;;q=x\r\n\r\n", {200}),
    "accept-openmetrics-garbled": (
        b"GET / HTTP/1.1\r\nAccept: \xff,application/openmetrics-text;;\r\n\r\n",
        {200},
    ),
    "content-length-lies-post": (
        b"POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\nshort",
        {405},
    ),
    "content-length-negative": (b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", {200, 400}),
    "chunked-garbage": (
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n",
        {200, 400},
    ),
    "http-0.9-style": (b"GET /metrics HTTP/0.9\r\n\r\n", {200, 400, 505}),
    "bare-lf-line-endings": (b"GET /metrics HTTP/1.1\nHost: x\n\n", {200, 400}),
}


@pytest.mark.parametrize("name", list(RAW_REQUESTS))
async def test_serve_answers_malformed_requests_with_4xx_or_a_normal_response(
    filled: CollectorRegistry, name: str
) -> None:
    data, statuses = RAW_REQUESTS[name]
    async with serving(filled) as port:
        answer = await exchange(port, data)
        await get_ok(port)
    assert status_of(answer) in statuses, answer[:300]
    if status_of(answer) == 200:  # the whole exposition, or what a name[] filter kept
        head, body = answer.split(b"\r\n\r\n", 1)
        assert f"content-length: {len(body)}".encode() in head.lower()
        list(parse_prometheus_text(body.decode()))


async def test_serve_survives_clients_that_send_nothing_or_half_a_request(
    filled: CollectorRegistry,
) -> None:
    async with serving(filled) as port:
        for data in (b"", b"GET /metr", b"GET /metrics HTTP/1.1\r\nAccept: text/pl"):
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                if data:
                    await stream.send(data)
            await get_ok(port)


def reset(stream: anyio.abc.SocketStream) -> None:
    """Make closing ``stream`` send a TCP reset (a client that crashes or times out)."""
    raw: socket.socket = stream.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_serve_survives_clients_that_reset_before_the_answer(
    filled: CollectorRegistry,
) -> None:
    async with serving(filled) as port:
        for data in (b"GET /met", b"GET /metrics HTTP/1.1\r\n\r\n"):
            for _ in range(20):
                stream = await anyio.connect_tcp("127.0.0.1", port)
                await stream.send(data)
                reset(stream)
                await stream.aclose()
            await anyio.sleep(0.1)
            await get_ok(port)


@pytest.fixture
def big(filled: CollectorRegistry) -> CollectorRegistry:
    Counter("big", "Big", ["v"], registry=filled).labels(v="x" * (16 * MEGABYTE)).inc()
    return filled


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_serve_survives_a_client_that_leaves_mid_response(
    big: CollectorRegistry, how: str
) -> None:
    """A scraper that times out and hangs up while a large answer is being sent."""
    async with serving(big) as port:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(b"GET /metrics HTTP/1.1\r\n\r\n")
        assert (await stream.receive(100)).startswith(b"HTTP/1.1 200")
        if how == "reset":
            reset(stream)
        await stream.aclose()
        await anyio.sleep(0.2)
        await get_ok(port)


async def test_serve_keeps_serving_while_silent_clients_hold_connections(
    filled: CollectorRegistry,
) -> None:
    async with serving(filled) as port:
        silent = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(50)]
        try:
            await get_ok(port)
            answer = await exchange(port, b"GET /metrics HTTP/1.1\r\n\r\n", eof=False)
            assert status_of(answer) == 200
        finally:
            for stream in silent:
                await stream.aclose()


# -- start_http_server (a thread) -------------------------------------------------------


@pytest.fixture
def threaded(filled: CollectorRegistry) -> Iterator[int]:
    server, thread = start_http_server(0, addr="127.0.0.1", registry=filled)
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def thread_get_ok(port: int) -> None:
    answer = raw_exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 200") and GOOD_LINE.encode() in answer


@pytest.mark.parametrize(
    ("data", "statuses"),
    [
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", {405}),  # as the WSGI app says
        (b"BREW /metrics HTTP/1.1\r\n\r\n", {405}),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", {400, 431}),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", {400, 431}),
        (b"GET /?name[]=%ff HTTP/1.1\r\nAccept: \xff\xfe\r\n\r\n", {200}),
    ],
    ids=["post", "odd-method", "huge-header", "many-headers", "garbage-query-and-accept"],
)
def test_start_http_server_answers_malformed_requests_with_4xx(
    threaded: int, data: bytes, statuses: set[int]
) -> None:
    answer = raw_exchange(threaded, data)
    assert int(answer.split()[1]) in statuses, answer[:200]
    thread_get_ok(threaded)


def test_start_http_server_survives_garbage_from_many_threads(threaded: int) -> None:
    errors: list[BaseException] = []

    def garbage(i: int) -> None:
        try:
            raw_exchange(threaded, b"\x00\xff" * i + b"\r\n\r\n")
        except TimeoutError as exc:  # a reset is the server's right; a hang is not
            errors.append(exc)
        except OSError:
            pass

    threads = [threading.Thread(target=garbage, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    thread_get_ok(threaded)
