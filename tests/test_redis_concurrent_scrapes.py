"""Scrapes that overlap on one worker read Redis into the same kept series: never a state
in between (a histogram at 0 would read as a counter reset, a _created of 0 as a restart)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Histogram, agenerate_metrics
from apytheus.backends.redis import RedisBackend


async def test_overlapping_scrapes_never_show_a_histogram_below_its_value(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(redis_server)
    h = Histogram("lat", "L", ["i"], registry=registry, buckets=[1, 2])
    for i in range(5000):
        h.labels(i=str(i)).observe(0.5)
    assert backend.flush_sync()
    texts: list[str] = []

    async def one() -> None:
        texts.append(await agenerate_metrics(registry))

    for _ in range(6):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
    wrong = [
        line
        for text in texts
        for line in text.splitlines()
        if line.startswith(("lat_count", "lat_sum")) and not line.endswith((" 1.0", " 0.5"))
    ]
    assert len(texts) == 12 and wrong == []


async def test_a_text_scrape_leaves_the_creation_times_an_openmetrics_scrape_shows(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(redis_server)
    c = Counter("jobs", "J", ["i"], registry=registry)
    for i in range(20000):
        c.labels(i=str(i)).inc()
    assert backend.flush_sync()
    done = False

    async def text() -> None:
        while not done:
            await agenerate_metrics(registry)

    async with anyio.create_task_group() as tg:
        tg.start_soon(text)
        await anyio.lowlevel.checkpoint()
        om = await agenerate_metrics(registry, openmetrics=True)
        after = await agenerate_metrics(registry, openmetrics=True)
        done = True
    for scrape in (om, after):
        created = [line for line in scrape.splitlines() if line.startswith("jobs_created")]
        assert len(created) == 20000
        assert [line for line in created if line.endswith(" 0.0")] == []
