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


class GatedCollector:
    """An async collector that counts its collections; the first one waits for ``gate``."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = anyio.Event()

    async def collect(self) -> list[Counter]:
        self.calls += 1
        if self.calls == 1:
            await self.gate.wait()
        counter = Counter("slow", "Slow", registry=None)
        counter.inc(self.calls)
        return [counter]


def client(registry: CollectorRegistry) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_fifty_concurrent_scrapes_share_one_collection(registry: CollectorRegistry) -> None:
    Counter("jobs", "Jobs", ["k"], registry=registry).labels(k="a").inc(3)
    collector = GatedCollector()
    registry.register(collector)
    bodies: list[str] = []
    async with client(registry) as c:

        async def scrape() -> None:
            response = await c.get("/metrics")
            assert response.status_code == 200
            bodies.append(response.text)

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(scrape)
            await anyio.wait_all_tasks_blocked()  # the first collects, 49 wait for it
            collector.gate.set()
    assert len(bodies) == 50 and collector.calls == 1
    assert len(set(bodies)) == 1 and 'jobs_total{k="a"} 3.0' in bodies[0]


async def test_scrapes_in_different_formats_do_not_share(registry: CollectorRegistry) -> None:
    collector = GatedCollector()
    registry.register(collector)
    texts: dict[str, str] = {}
    async with client(registry) as c:

        async def scrape(accept: str) -> None:
            texts[accept] = (await c.get("/metrics", headers={"Accept": accept})).text

        async with anyio.create_task_group() as tg:
            tg.start_soon(scrape, "text/plain")
            await anyio.wait_all_tasks_blocked()  # the text scrape waits at the gate
            tg.start_soon(scrape, "application/openmetrics-text")
            await anyio.wait_all_tasks_blocked()
            collector.gate.set()
    assert collector.calls == 2  # the OpenMetrics scrape did not wait for the text one
    assert texts["application/openmetrics-text"].endswith("# EOF\n")
    assert not texts["text/plain"].endswith("# EOF\n")


async def test_a_waiter_renders_its_own_when_the_scrape_it_joined_is_cancelled(
    registry: CollectorRegistry,
) -> None:
    collector = GatedCollector()  # the gate never opens: the first scrape hits its deadline
    registry.register(collector)
    codes: dict[str, int] = {}
    async with client(registry) as c:

        async def scrape(name: str, headers: dict[str, str]) -> None:
            codes[name] = (await c.get("/metrics", headers=headers)).status_code

        async with anyio.create_task_group() as tg:
            tg.start_soon(scrape, "leader", {"X-Prometheus-Scrape-Timeout-Seconds": "0.3"})
            await anyio.wait_all_tasks_blocked()  # the leader waits at the gate
            tg.start_soon(scrape, "waiter", {})
            await anyio.wait_all_tasks_blocked()  # the waiter waits for the leader
            assert collector.calls == 1
    assert codes == {"leader": 503, "waiter": 200}
    assert collector.calls == 2  # the leader's, cancelled, and the waiter's own


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
    collector = GatedCollector()
    registry.register(collector)
    jobs = Counter("jobs", "Jobs", registry=registry)
    async with client(registry) as c, anyio.create_task_group() as tg:
        tg.start_soon(c.get, "/metrics")
        await anyio.wait_all_tasks_blocked()  # a scrape is collecting (waiting at the gate)
        jobs.inc(7)
        with anyio.fail_after(10):  # joining the scrape would wait for the gate forever
            text = await agenerate_metrics(registry)
        collector.gate.set()
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
    codes: list[int] = []
    server.pause()
    try:
        async with client(registry) as c:

            async def scrape() -> None:
                codes.append((await c.get("/metrics")).status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(scrape)
    finally:
        server.resume()
    assert codes == [503] * 5
    assert len(calls) == 1
