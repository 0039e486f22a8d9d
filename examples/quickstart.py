"""The pytheus quickstart, as an ASGI (Starlette) app on the in-process backend.

python examples/quickstart.py           # serve on http://127.0.0.1:8080 (/, /slow, /metrics)
python examples/quickstart.py --demo    # serve on a free port, send requests, print /metrics
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

import anyio
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from apytheus.exposition import make_asgi_app
from apytheus.metrics import Histogram

SLOW_SECONDS = 0.3

http_request_duration_seconds = Histogram(
    "http_request_duration_seconds", "Time spent answering a request, by route.", ["route"]
)


async def home(request: Request) -> PlainTextResponse:
    # track time with the context manager
    async with http_request_duration_seconds.labels(route="/").time():
        return PlainTextResponse("hello world!")


# alternatively, track time with the decorator shortcut (it awaits the body)
@http_request_duration_seconds.labels(route="/slow")
async def slow(request: Request) -> PlainTextResponse:
    await anyio.sleep(SLOW_SECONDS)
    return PlainTextResponse("hello world! from slow!")


app = Starlette(
    routes=[Route("/", home), Route("/slow", slow), Route("/metrics", make_asgi_app())],
)


def demo() -> None:
    """Serve on a free local port, make some requests, print what Prometheus would scrape."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("the demo server did not start")
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(5):
                client.get("/").raise_for_status()
            client.get("/slow").raise_for_status()
            print(f"GET http://127.0.0.1:{port}/metrics after 5 x / and 1 x /slow:\n")
            metrics = client.get("/metrics")
            metrics.raise_for_status()
            print(metrics.text)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run the demo and exit")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.demo:
        demo()
    else:
        uvicorn.run(app, host="127.0.0.1", port=args.port)
