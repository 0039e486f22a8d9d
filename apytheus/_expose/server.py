"""EXPOSE: ``serve()``, a minimal HTTP/1.1 server over anyio streams (no web framework needed).

It parses just enough HTTP to drive the ASGI `MetricsApp` (one request per
connection), so negotiation, gzip and the ``name[]`` filter behave exactly as
with ``make_asgi_app``.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from ..registry import REGISTRY, Registry
from .asgi import MetricsApp
from .auth import credentials

log = logging.getLogger("apytheus")

_MAX_HEAD = 16 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


async def serve_app(
    app: Any,
    port: int,
    addr: str,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI ``app`` on ``addr:port`` until cancelled; report the bound port."""
    listener = await anyio.create_tcp_listener(local_host=addr, local_port=port)
    async with listener:
        task_status.started(listener.extra(SocketAttribute.local_port))

        async def handle(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                with anyio.move_on_after(30):  # a slow or silent client cannot hold a task
                    try:
                        await _one_request(app, stream)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        pass  # the client left (a scrape timeout, say): nothing to answer
                    except Exception:  # never let one request take the server down
                        log.exception("apytheus: serve() failed to answer a request")

        await listener.serve(handle)


async def _one_request(app: Any, stream: anyio.abc.SocketStream) -> None:
    head = b""
    try:
        while b"\r\n\r\n" not in head and b"\n\n" not in head:
            chunk = await stream.receive(4096)
            head += chunk
            if len(head) > _MAX_HEAD:
                raise ValueError("request head too large")
        head = head.replace(b"\r\n", b"\n")  # bare LF line ends are tolerated
        request_line, *header_lines = head.split(b"\n\n", 1)[0].split(b"\n")
        method, target, _ = request_line.decode("latin-1").split(" ", 2)
        headers = [
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(b":") for line in header_lines)
        ]
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return
    except ValueError:
        await stream.send(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        return
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "method": method.upper(),
        "path": path,
        "query_string": query.encode("latin-1"),
        "headers": headers,
    }
    response: dict[str, Any] = {}

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            response["status"] = message["status"]
            response["headers"] = message.get("headers", [])
        elif message["type"] == "http.response.body":
            response["body"] = response.get("body", b"") + message.get("body", b"")

    await app(scope, receive, send)
    status = int(response.get("status", 500))
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}".encode()]
    lines += [name + b": " + value for name, value in response.get("headers", [])]
    lines.append(b"Connection: close")
    await stream.send(b"\r\n".join(lines) + b"\r\n\r\n" + response.get("body", b""))


async def serve(
    port: int,
    addr: str = "0.0.0.0",
    registry: Registry = REGISTRY,
    *,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    protobuf: bool = True,
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
    app = MetricsApp(registry, credentials(bearer_token, basic_auth), protobuf)
    await serve_app(app, port, addr, task_status=task_status)
