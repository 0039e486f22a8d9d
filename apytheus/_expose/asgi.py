"""EXPOSE: the ASGI app that serves a registry, and the ASGI lifespan driver.

The driver runs `apytheus.lifespan` (the backend's flusher) around an app's
own lifespan; `MetricsApp` and ``MetricsMiddleware`` both use it.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread

from ..backends._current import lifespan
from ..exceptions import BackendUnavailable
from ..registry import REGISTRY, Registry
from .auth import Credentials, credentials
from .flight import shared
from .negotiate import gzip_ok, negotiate, query_names
from .render import arender_format

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def make_asgi_app(
    registry: Registry = REGISTRY,
    *,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    protobuf: bool = True,
) -> MetricsApp:
    """An ASGI app serving ``registry`` (GET and HEAD; other methods get 405).

    Mounted as the top-level app it also handles lifespan, running the
    backend's flusher for the app's lifetime.

    Args:
        registry: what to serve.
        bearer_token: if given, requests must send ``Authorization: Bearer <token>``.
        basic_auth: if given, a ``(user, password)`` pair requests must send.
            With both, either is accepted; otherwise the answer is 401.
        protobuf: False never answers in protobuf, whatever the scraper prefers.

    The format is the best the ``Accept`` header allows (see
    `apytheus.exposition.render`); gzip when ``Accept-Encoding`` allows it.

    Examples:
        >>> from starlette.applications import Starlette
        >>> from starlette.routing import Route
        >>> from apytheus import make_asgi_app
        >>> app = Starlette(routes=[Route("/metrics", make_asgi_app())])
    """
    return MetricsApp(registry, credentials(bearer_token, basic_auth), protobuf)


class MetricsApp:
    """The ASGI app returned by `make_asgi_app` (an object, so routers mount it as ASGI)."""

    def __init__(
        self,
        registry: Registry = REGISTRY,
        auth: Credentials | None = None,
        protobuf: bool = True,
    ) -> None:
        self.registry = registry
        self.auth = auth
        self.protobuf = protobuf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (http or lifespan)."""
        if scope["type"] == "lifespan":
            await run_lifespan(None, scope, receive, send)
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
        fmt = negotiate(headers.get("accept"), self.protobuf)
        names = query_names(scope.get("query_string", b"").decode("latin-1"))
        budget = scrape_budget(headers.get("x-prometheus-scrape-timeout-seconds"))
        try:
            with anyio.move_on_after(budget) as deadline:
                filter_ = None if names is None else frozenset(names)
                key = (id(self.registry), fmt.kind, fmt.escaping, filter_)
                body = await shared(key, lambda: arender_format(self.registry, fmt, names))
        except BackendUnavailable as exc:
            await _respond(send, 503, f"{exc}\n".encode(), "text/plain", [])
            return
        if deadline.cancelled_caught:  # Prometheus gives up at its timeout: say why first
            message = f"the metrics took longer than the scrape's {budget:.3g} s to collect\n"
            await _respond(send, 503, message.encode(), "text/plain", [])
            return
        extra: list[tuple[bytes, bytes]] = []
        if gzip_ok(headers.get("accept-encoding")):
            body = await anyio.to_thread.run_sync(gzip.compress, body)  # megabytes: not on the loop
            extra.append((b"content-encoding", b"gzip"))
        shown = b"" if method == "HEAD" else body
        await _respond(send, 200, shown, fmt.content_type, extra, len(body))


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


async def run_lifespan(app: ASGIApp | None, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app``'s lifespan (or just answer it, for None) inside `apytheus.lifespan`.

    A backend that cannot start (bad credentials, say) makes the server's
    startup fail with its message. The last flush happens before the server
    reads ``lifespan.shutdown.complete``, after which it may exit at once. An
    app that raises before it reads a lifespan message does not do lifespans
    (the ASGI spec's way to say so; Django's handler does): it is answered here
    instead, so that the backend still runs for the server's lifetime.
    """
    context = lifespan()
    try:
        await context.__aenter__()
    except Exception as exc:  # bad credentials, say: the server must not start
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
        return
    closed = False

    async def flush_then_send(message: Message) -> None:
        nonlocal closed
        if message["type"] == "lifespan.shutdown.complete" and not closed:
            closed = True
            try:
                await context.__aexit__(None, None, None)
            except Exception as exc:  # the server reports it
                await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                return
        await send(message)

    started = False

    async def noting_receive() -> Message:
        nonlocal started
        started = True
        return await receive()

    try:
        try:
            await (app or _answer_lifespan)(scope, noting_receive, flush_then_send)
        except Exception:
            if started:
                raise
            await _answer_lifespan(scope, receive, flush_then_send)
    except BaseException as exc:
        if closed or not await context.__aexit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        if not closed:
            await context.__aexit__(None, None, None)


async def _answer_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """The lifespan of an app with nothing of its own to start."""
    if (await receive())["type"] != "lifespan.startup":
        return
    await send({"type": "lifespan.startup.complete"})
    while (await receive())["type"] != "lifespan.shutdown":
        pass
    await send({"type": "lifespan.shutdown.complete"})


def scrape_budget(header: str | None) -> float:
    """Seconds a scrape may take, from Prometheus' ``X-Prometheus-Scrape-Timeout-Seconds``.

    The answer (a 503) must reach Prometheus before it gives up: 90 % of its
    timeout, and at least 50 ms before it where the timeout is long enough for
    that. No header, or one that is not a positive number: no deadline.
    """
    try:
        timeout = float(header) if header else math.inf
    except ValueError:
        return math.inf
    if not timeout > 0 or math.isnan(timeout):
        return math.inf
    return timeout * 0.9 if timeout < 0.5 else min(timeout * 0.9, timeout - 0.05)
