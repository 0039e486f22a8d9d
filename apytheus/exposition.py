"""EXPOSE: render a registry for Prometheus and serve it.

`generate_metrics` (sync) and `agenerate_metrics` (async, yields to the event
loop while it works) return the text; `make_asgi_app`, `make_wsgi_app` and
`start_http_server` serve it, choosing the format from the ``Accept`` header
and compressing when ``Accept-Encoding`` allows gzip.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread

from ._auth import Credentials, credentials
from ._collect import collect_async, collect_sync
from ._formats import (
    OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS_CONTENT_TYPE,
    encode_openmetrics,
    encode_text,
)
from ._lifespan import lifespan
from ._push import PushgatewayError as PushgatewayError
from ._push import abasic_auth_handler as abasic_auth_handler
from ._push import adefault_handler as adefault_handler
from ._push import adelete_from_gateway as adelete_from_gateway
from ._push import apush_to_gateway as apush_to_gateway
from ._push import apushadd_to_gateway as apushadd_to_gateway
from ._push import basic_auth_handler as basic_auth_handler
from ._push import default_handler as default_handler
from ._push import delete_from_gateway as delete_from_gateway
from ._push import push_to_gateway as push_to_gateway
from ._push import pushadd_to_gateway as pushadd_to_gateway
from ._samples import MetricFamily, build_family
from ._server import serve_app
from ._textfile import write_to_textfile as write_to_textfile
from .exceptions import BackendUnavailable
from .registry import REGISTRY, Registry

__all__ = [
    "MetricsApp",
    "OPENMETRICS_CONTENT_TYPE",
    "PROMETHEUS_CONTENT_TYPE",
    "PushgatewayError",
    "abasic_auth_handler",
    "adefault_handler",
    "adelete_from_gateway",
    "agenerate_metrics",
    "apush_to_gateway",
    "apushadd_to_gateway",
    "basic_auth_handler",
    "choose_format",
    "default_handler",
    "delete_from_gateway",
    "generate_metrics",
    "make_asgi_app",
    "make_wsgi_app",
    "push_to_gateway",
    "pushadd_to_gateway",
    "serve",
    "start_http_server",
    "write_to_textfile",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_CHUNK = 2000  # series (and samples) rendered between two yields to the event loop


def generate_metrics(
    registry: Registry = REGISTRY, openmetrics: bool = False, names: Iterable[str] | None = None
) -> str:
    """Render every metric of ``registry`` (blocking; for WSGI apps and scripts).

    Args:
        registry: what to render.
        openmetrics: OpenMetrics 1.0.0 instead of the Prometheus text format 0.0.4.
        names: only the metrics exposing one of these sample names (``name[]``).

    Examples:
        >>> from apytheus import CollectorRegistry, Gauge, generate_metrics
        >>> registry = CollectorRegistry()
        >>> Gauge("queue_size", "Jobs waiting", registry=registry).set(3)
        >>> print(generate_metrics(registry), end="")
        # HELP queue_size Jobs waiting
        # TYPE queue_size gauge
        queue_size 3.0
    """
    families = collect_sync(registry, openmetrics, _names(names))
    return encode_openmetrics(families) if openmetrics else encode_text(families)


async def agenerate_metrics(
    registry: Registry = REGISTRY, openmetrics: bool = False, names: Iterable[str] | None = None
) -> str:
    """Render every metric of ``registry`` without blocking the event loop.

    Collects through the backend's async path (a Redis backend first flushes
    this worker's buffer, in a worker thread), then turns series into text a
    chunk at a time, yielding to the loop in between: other requests keep
    being served during a scrape of any size.

    Args:
        registry: what to render.
        openmetrics: OpenMetrics 1.0.0 instead of the Prometheus text format 0.0.4.
        names: only the metrics exposing one of these sample names (``name[]``).
    """
    out: list[str] = []
    done = 0
    for part in await collect_async(registry, openmetrics, _names(names)):
        if isinstance(part, MetricFamily):
            out.append(
                encode_openmetrics([part], eof=False) if openmetrics else encode_text([part])
            )
            continue
        family, name, series = part
        for start in range(0, max(len(series), 1), _CHUNK):
            built = build_family(family, name, series[start : start + _CHUNK], openmetrics)
            head = start == 0
            out.append(
                encode_openmetrics([built], eof=False, headers=head)
                if openmetrics
                else encode_text([built], headers=head)
            )
            done += len(built.samples)
            if done >= _CHUNK:
                done = 0
                await anyio.lowlevel.checkpoint()
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out)


def _names(names: Iterable[str] | None) -> frozenset[str] | None:
    if names is None or isinstance(names, str):
        return None if names is None else frozenset((names,))
    return frozenset(names)


def choose_format(accept: str | None) -> tuple[bool, str]:
    """Return (openmetrics?, content type) for an ``Accept`` header."""
    if accept and "application/openmetrics-text" in accept:
        return True, OPENMETRICS_CONTENT_TYPE
    return False, PROMETHEUS_CONTENT_TYPE


def _query_names(query: str) -> list[str] | None:
    """The ``name[]`` values of a query string (prometheus_client's filter), or None."""
    if "name" not in query:
        return None
    try:
        found = parse_qs(query, keep_blank_values=False, max_num_fields=1000).get("name[]")
    except ValueError:  # more fields than any real filter has: no filter, never a 500
        return None
    return found or None


def _gzip_ok(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` takes gzip: listed (or ``*``) with a q-value above 0."""
    if not accept_encoding:
        return False
    star = False
    for item in str(accept_encoding).split(","):
        coding, *params = item.split(";")
        q = 1.0
        for param in params:
            key, _, number = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(number)
                except ValueError:
                    q = 0.0  # a malformed weight: do not guess
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q > 0
    return star


def make_asgi_app(
    registry: Registry = REGISTRY,
    *,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> MetricsApp:
    """An ASGI app serving ``registry`` (GET and HEAD; other methods get 405).

    Mounted as the top-level app it also handles lifespan, running the
    backend's flusher for the app's lifetime.

    Args:
        registry: what to serve.
        bearer_token: if given, requests must send ``Authorization: Bearer <token>``.
        basic_auth: if given, a ``(user, password)`` pair requests must send.
            With both, either is accepted; otherwise the answer is 401.

    Examples:
        >>> from starlette.applications import Starlette
        >>> from starlette.routing import Route
        >>> from apytheus import make_asgi_app
        >>> app = Starlette(routes=[Route("/metrics", make_asgi_app())])
    """
    return MetricsApp(registry, credentials(bearer_token, basic_auth))


class MetricsApp:
    """The ASGI app returned by `make_asgi_app` (an object, so routers mount it as ASGI)."""

    def __init__(self, registry: Registry = REGISTRY, auth: Credentials | None = None) -> None:
        self.registry = registry
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (http or lifespan)."""
        if scope["type"] == "lifespan":
            await _serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            allow = [(b"allow", b"GET, HEAD")]
            await _respond(send, 405, b"method not allowed\n", "text/plain", allow)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        if self.auth is not None and not self.auth.allows(headers.get("authorization")):
            challenge = [(b"www-authenticate", self.auth.challenge.encode())]
            await _respond(send, 401, b"unauthorized\n", "text/plain", challenge)
            return
        openmetrics, content_type = choose_format(headers.get("accept"))
        names = _query_names(scope.get("query_string", b"").decode("latin-1"))
        try:
            body = (await agenerate_metrics(self.registry, openmetrics, names)).encode()
        except BackendUnavailable as exc:
            await _respond(send, 503, f"{exc}\n".encode(), "text/plain", [])
            return
        extra: list[tuple[bytes, bytes]] = []
        if _gzip_ok(headers.get("accept-encoding")):
            body = await anyio.to_thread.run_sync(gzip.compress, body)  # megabytes: not on the loop
            extra.append((b"content-encoding", b"gzip"))
        await _respond(send, 200, b"" if method == "HEAD" else body, content_type, extra, len(body))


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]],
    length: int | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body) if length is None else length).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _serve_lifespan(receive: Receive, send: Send) -> None:
    """Run the ASGI lifespan protocol around `lifespan()`."""
    message = await receive()
    if message["type"] != "lifespan.startup":
        return
    started = False
    try:
        async with lifespan():
            await send({"type": "lifespan.startup.complete"})
            started = True
            while (await receive())["type"] != "lifespan.shutdown":
                pass
    except Exception as exc:  # the server reports it (and refuses to start, at startup)
        phase = "shutdown" if started else "startup"
        await send({"type": f"lifespan.{phase}.failed", "message": str(exc)})
        return
    await send({"type": "lifespan.shutdown.complete"})


def make_wsgi_app(
    registry: Registry = REGISTRY,
    *,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> Callable[..., Iterable[bytes]]:
    """A WSGI app serving ``registry`` (for Flask, Django and other sync servers).

    ``bearer_token`` and ``basic_auth`` protect it as in `make_asgi_app`.
    """
    auth = credentials(bearer_token, basic_auth)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if auth is not None and not auth.allows(environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("WWW-Authenticate", auth.challenge)])
            return [b"unauthorized\n"]
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b"method not allowed\n"]
        openmetrics, content_type = choose_format(environ.get("HTTP_ACCEPT"))
        names = _query_names(environ.get("QUERY_STRING", ""))
        try:
            body = generate_metrics(registry, openmetrics, names).encode()
        except BackendUnavailable as exc:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"{exc}\n".encode()]
        headers = [("Content-Type", content_type)]
        if _gzip_ok(environ.get("HTTP_ACCEPT_ENCODING")):
            body = gzip.compress(body, compresslevel=6)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [b"" if method == "HEAD" else body]

    return app


async def serve(
    port: int,
    addr: str = "0.0.0.0",
    registry: Registry = REGISTRY,
    *,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``registry`` over HTTP from the running event loop (asyncio or trio).

    For async programs without a web framework. Runs until cancelled; with
    ``await task_group.start(serve, 0)`` it reports the port it bound.

    Examples:
        >>> import anyio, httpx
        >>> from apytheus import CollectorRegistry, Counter
        >>> from apytheus.exposition import serve
        >>> registry = CollectorRegistry()
        >>> Counter("jobs", "Jobs", registry=registry).inc()
        >>> async def main():
        ...     async with anyio.create_task_group() as tg:
        ...         port = await tg.start(serve, 0, "127.0.0.1", registry)
        ...         async with httpx.AsyncClient() as client:
        ...             r = await client.get(f"http://127.0.0.1:{port}/metrics")
        ...         tg.cancel_scope.cancel()
        ...     return r.text
        >>> print(anyio.run(main), end="")
        # HELP jobs_total Jobs
        # TYPE jobs_total counter
        jobs_total 1.0
    """
    app = MetricsApp(registry, credentials(bearer_token, basic_auth))
    await serve_app(app, port, addr, task_status=task_status)


def start_http_server(
    port: int,
    addr: str = "0.0.0.0",
    registry: Registry = REGISTRY,
    *,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``registry`` over HTTP from a daemon thread (for scripts and workers).

    ``bearer_token`` and ``basic_auth`` protect it as in `make_asgi_app`.

    Returns:
        The server and its thread; call ``server.shutdown()`` to stop it.
    """
    wsgi = make_wsgi_app(registry, bearer_token=bearer_token, basic_auth=basic_auth)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            environ = {
                "REQUEST_METHOD": self.command,
                "QUERY_STRING": self.path.partition("?")[2],
                "HTTP_ACCEPT": self.headers.get("Accept"),
                "HTTP_ACCEPT_ENCODING": self.headers.get("Accept-Encoding"),
                "HTTP_AUTHORIZATION": self.headers.get("Authorization"),
            }
            status_headers: list[Any] = []
            body = b"".join(wsgi(environ, lambda s, h: status_headers.extend((s, h))))
            self.send_response(int(status_headers[0].split()[0]))
            for k, v in status_headers[1]:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def handle_one_request(self) -> None:
            """Answer any method: the WSGI app says 405 to all but GET and HEAD (not 501)."""
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self.do_GET()
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: scrapes every few seconds would flood stderr."""

    server = ThreadingHTTPServer((addr, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="apytheus-http", daemon=True)
    thread.start()
    return server, thread
