"""A scrape that cannot finish before Prometheus' timeout is answered 503 just before it,
and its work is abandoned (DESIGN, "Serving, added")."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, make_asgi_app
from apytheus._expose.asgi import scrape_budget
from apytheus.backends.redis import MAX_READS, RedisBackend


class Stuck:
    """A collector that would take longer than any scrape timeout."""

    def __init__(self) -> None:
        self.started = self.finished = 0

    async def collect(self) -> list[Counter]:
        self.started += 1
        await anyio.sleep(30)
        self.finished += 1
        return []


def client(registry: CollectorRegistry) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_a_scrape_past_its_timeout_is_answered_503_and_its_work_abandoned(
    registry: CollectorRegistry,
) -> None:
    stuck = Stuck()
    registry.register(stuck)
    async with client(registry) as c:
        response = await c.get("/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "0.5"})
    assert response.status_code == 503
    assert "longer than the scrape's 0.45 s" in response.text
    assert stuck.started == 1 and stuck.finished == 0  # cancelled, not left running


async def test_without_the_header_there_is_no_deadline(registry: CollectorRegistry) -> None:
    Counter("jobs", "Jobs", registry=registry).inc()
    async with client(registry) as c:
        response = await c.get(
            "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "not a number"}
        )
    assert response.status_code == 200 and "jobs_total 1.0" in response.text


@pytest.mark.parametrize(
    ("header", "budget"),
    [("10", 9.0), ("0.3", 0.27), ("0.05", 0.045), ("0", float("inf")), (None, float("inf"))],
)
def test_the_budget_leaves_time_for_the_answer(header: str | None, budget: float) -> None:
    assert scrape_budget(header) == pytest.approx(budget)


async def test_a_stopped_redis_gets_a_503_before_the_timeout_and_nothing_is_lost(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    server = redis_server_factory()
    make_redis_backend(server, socket_timeout=30)  # only the scrape's deadline can end it
    jobs = Counter("jobs", "Jobs", registry=registry)
    jobs.inc(2)
    async with client(registry) as c:
        assert "jobs_total 2.0" in (await c.get("/metrics")).text
        server.pause()
        try:
            jobs.inc(3)
            response = await c.get("/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"})
            assert response.status_code == 503
            assert "longer than the scrape's" in response.text
        finally:
            server.resume()
        response = await c.get("/metrics")
    assert response.status_code == 200 and "jobs_total 5.0" in response.text


async def test_scrapes_against_a_hung_redis_do_not_pile_up_read_threads(
    redis_server_factory: Callable[..., RedisServer],
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """An abandoned read runs on until Redis answers: it still counts against the cap."""
    server = redis_server_factory()
    backend = make_redis_backend(server, socket_timeout=30)
    Counter("jobs", "Jobs", registry=registry).inc()
    async with client(registry) as c:
        server.pause()
        try:
            for _ in range(6):
                response = await c.get(
                    "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "0.3"}
                )
                assert response.status_code == 503
                assert backend._reads.running <= MAX_READS
            assert "earlier reads have not finished" in response.text
        finally:
            server.resume()
        with anyio.fail_after(20):  # poll: the threads end on their own, nothing to wait on
            while backend._reads.running:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        assert (await c.get("/metrics")).status_code == 200
