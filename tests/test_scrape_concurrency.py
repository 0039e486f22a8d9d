"""A large scrape never blocks the event loop: other requests are served meanwhile."""

from __future__ import annotations

import gc
import time

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from apytheus import CollectorRegistry, Counter, make_asgi_app

SERIES = 100_000


async def ping(request: Request) -> PlainTextResponse:
    return PlainTextResponse("pong")


@pytest.mark.timeout(240)  # 100k series take a few seconds, many more on a loaded machine
async def test_requests_are_served_while_100k_series_are_scraped(
    registry: CollectorRegistry,
) -> None:
    c = Counter("hits", "Hits", ["id"], registry=registry)
    for i in range(SERIES):
        c.labels(id=str(i)).inc()
    app = Starlette(routes=[Route("/ping", ping), Route("/metrics", make_asgi_app(registry))])
    transport = httpx.ASGITransport(app=app)
    latencies: list[float] = []
    scrape: dict[str, float] = {}

    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:

        async def scrape_once() -> None:
            start = time.perf_counter()
            response = await client.get("/metrics")
            scrape["seconds"] = time.perf_counter() - start
            scrape["lines"] = response.text.count("\n")

        async def keep_pinging() -> None:
            # A ping sent at any moment is answered by the next completion: the gap
            # between two completions is the longest a concurrent request waited.
            last = time.perf_counter()
            while "seconds" not in scrape:
                assert (await client.get("/ping")).text == "pong"
                now = time.perf_counter()
                latencies.append(now - last)
                last = now
                # An in-memory transport may complete a request without suspending once;
                # a client on a socket always waits for the network here.
                await anyio.lowlevel.checkpoint()

        gc.disable()  # a collection of 100k+ objects pauses any server: not what is measured
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(keep_pinging)
                await anyio.lowlevel.checkpoint()
                tg.start_soon(scrape_once)
        finally:
            gc.enable()

    assert scrape["lines"] == SERIES + 2  # HELP, TYPE and every series
    # Relative, not absolute: pings kept completing all along the scrape, and none
    # waited for half of it. Rendering without yielding makes one ping wait about 90%
    # of the scrape; rendering in chunks, a few milliseconds.
    assert len(latencies) >= 10
    assert max(latencies) < scrape["seconds"] / 2
