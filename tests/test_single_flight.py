"""Concurrent scrapes of one worker share one collection (DESIGN, "Serving, added")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, agenerate_metrics, make_asgi_app
from apytheus.backends.redis import RedisBackend


class SlowCollector:
    """An async collector that counts its collections and takes a while each."""

    def __init__(self) -> None:
        self.calls = 0

    async def collect(self) -> list[Counter]:
        self.calls += 1
        await anyio.sleep(0.05)
        counter = Counter("slow", "Slow", registry=None)
        counter.inc(self.calls)
        return [counter]


async def test_fifty_concurrent_scrapes_share_one_collection(registry: CollectorRegistry) -> None:
    Counter("jobs", "Jobs", ["k"], registry=registry).labels(k="a").inc(3)
    collector = SlowCollector()
    registry.register(collector)
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    bodies: list[str] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def scrape() -> None:
            response = await client.get("/metrics")
            assert response.status_code == 200
            bodies.append(response.text)

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(scrape)
    assert len(bodies) == 50
    assert collector.calls <= 2  # one, or two if a scrape came just after the first ended
    assert len(set(bodies)) <= collector.calls
    assert all('jobs_total{k="a"} 3.0' in b and "slow_total" in b for b in bodies)


async def test_scrapes_in_different_formats_do_not_share(registry: CollectorRegistry) -> None:
    collector = SlowCollector()
    registry.register(collector)
    results: dict[bool, str] = {}

    async def scrape(openmetrics: bool) -> None:
        results[openmetrics] = await agenerate_metrics(registry, openmetrics=openmetrics)

    async with anyio.create_task_group() as tg:
        tg.start_soon(scrape, False)
        tg.start_soon(scrape, True)
    assert collector.calls == 2
    assert results[True].endswith("# EOF\n") and not results[False].endswith("# EOF\n")
    assert "# TYPE slow counter" in results[True] and "# TYPE slow_total counter" in results[False]


async def test_a_waiter_still_gets_an_answer_when_the_scrape_it_joined_is_cancelled(
    registry: CollectorRegistry,
) -> None:
    collector = SlowCollector()
    registry.register(collector)
    answer: list[str] = []

    async def waiter() -> None:
        answer.append(await agenerate_metrics(registry))

    async def leader(scope: anyio.CancelScope) -> None:
        with scope:
            await agenerate_metrics(registry)

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(leader, scope)
        await anyio.sleep(0.01)  # the leader is inside the slow collector now
        tg.start_soon(waiter)
        await anyio.sleep(0.01)  # the waiter waits for the leader's answer
        scope.cancel()
    assert len(answer) == 1 and "slow_total" in answer[0]
    assert collector.calls == 2  # the leader's, abandoned, and the waiter's own


async def test_a_registry_that_cannot_be_hashed_is_rendered(registry: CollectorRegistry) -> None:
    """A user's registry may define __eq__ (a dataclass, say), which makes it unhashable."""

    @dataclass
    class Wrapped:
        inner: CollectorRegistry

        @property
        def prefix(self) -> str | None:
            return None

        def register(self, collector: Any) -> None:
            self.inner.register(collector)

        def unregister(self, collector: Any) -> None:
            self.inner.unregister(collector)

        def collect(self) -> list[Any]:
            return self.inner.collect()

    Counter("jobs", "Jobs", registry=registry).inc()
    assert "jobs_total 1.0" in await agenerate_metrics(Wrapped(registry))


async def test_a_direct_call_always_collects_afresh(registry: CollectorRegistry) -> None:
    """A push (or any direct agenerate_metrics call) must see what was recorded just before."""
    collector = SlowCollector()
    registry.register(collector)
    jobs = Counter("jobs", "Jobs", registry=registry)
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as c,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(c.get, "/metrics")
        await anyio.sleep(0.01)  # the scrape is collecting now
        jobs.inc(7)
        text = await agenerate_metrics(registry)
    assert "jobs_total 7.0" in text


async def test_waiters_share_the_leaders_backend_unavailable(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """Redis unreachable: identical scrapes fail together, not one timeout after another."""
    server = redis_server_factory()
    backend = make_redis_backend(server, socket_timeout=1)
    Counter("jobs", "Jobs", registry=registry).inc()
    real = backend.collect
    calls: list[int] = []

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    backend.collect = counting  # type: ignore[method-assign, assignment]
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    codes: list[int] = []
    server.pause()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:

            async def scrape() -> None:
                codes.append((await c.get("/metrics")).status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(scrape)
    finally:
        server.resume()
    assert codes == [503] * 5
    assert len(calls) == 1
