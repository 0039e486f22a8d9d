"""A FastAPI app for `uvicorn --workers N` whose every request runs in a sampled span.

The outer ASGI app makes an OpenTelemetry SDK span current around each request (as
tracing instrumentation does), `MetricsMiddleware(exemplars="otel")` puts its ids into
the duration histogram's exemplars, and every response says which worker answered
(``x-worker-pid``). ``GET /traced/{n}`` answers with its trace id. The backend comes
from the environment at ``import apytheus`` (tests/test_end_to_end_exemplars.py).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from starlette.routing import Route

from apytheus import make_asgi_app
from apytheus.middleware import MetricsMiddleware

routes = FastAPI(routes=[Route("/metrics", make_asgi_app())])


@routes.get("/traced/{n}")
async def traced(n: int) -> dict[str, int | str]:
    context = trace.get_current_span().get_span_context()
    return {"n": n, "trace_id": format(context.trace_id, "032x")}


tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("traced_app")
measured = MetricsMiddleware(routes, exemplars="otel")


async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """Each HTTP request in a sampled span of its own; the worker's PID on each response."""
    if scope["type"] != "http":  # the lifespan: the middleware runs its flusher
        await measured(scope, receive, send)
        return

    async def send_with_pid(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            pid = (b"x-worker-pid", str(os.getpid()).encode())
            message = {**message, "headers": [*message.get("headers", []), pid]}
        await send(message)

    with tracer.start_as_current_span("request"):
        await measured(scope, receive, send_with_pid)
