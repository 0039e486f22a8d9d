"""A slow Redis: a proxy of the test's own delays every round trip. Scrapes keep their
deadline, the heartbeat never lapses, and nothing is lost once latency is back to normal."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import anyio
import anyio.to_thread
import httpx
import pytest
from redis_server import RedisServer
from tcp_proxy import DelayingProxy

from apytheus import CollectorRegistry, Counter, make_asgi_app
from apytheus.backends.redis import RedisBackend

DELAY = 0.3  # each way: a round trip takes at least 0.6 s


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[DelayingProxy]:
    found = DelayingProxy(redis_server.port)
    yield found
    found.close()


async def test_scrapes_keep_their_deadline_and_the_heartbeat_never_lapses(
    redis_server: RedisServer,
    proxy: DelayingProxy,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    backend = make_redis_backend(proxy.port, flush_interval=0.2, heartbeat_ttl=2.5)
    jobs = Counter("jobs", "Jobs", registry=registry)
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    direct = redis_server.client()  # around the proxy: what Redis holds right now
    recorded = 0
    answers: dict[int, int] = {}
    lapses: list[float] = []

    async def watch_heartbeat(stop: anyio.Event) -> None:
        while not stop.is_set():
            key = f"{{{key_prefix}}}:workers"
            expiry = await anyio.to_thread.run_sync(direct.zscore, key, backend.worker)
            if expiry is None or expiry <= time.time():
                lapses.append(time.time())
            await anyio.sleep(0.05)

    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        jobs.inc()
        recorded += 1
        assert (await client.get("/metrics")).status_code == 200  # the heartbeat exists
        proxy.delay = DELAY
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_heartbeat, stop)
            until = time.monotonic() + 6
            while time.monotonic() < until:
                for _ in range(50):
                    jobs.inc()
                recorded += 50
                # every other scrape has too little time for a slow Redis
                timeout = "1" if sum(answers.values()) % 2 else "4"
                with anyio.fail_after(6):  # never hangs past the deadline it was given
                    response = await client.get(
                        "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": timeout}
                    )
                answers[response.status_code] = answers.get(response.status_code, 0) + 1
                # a 503 says why: past the deadline, or reads given up on still running
                assert response.status_code == 200 or (
                    response.status_code == 503
                    and ("longer than the scrape's" in response.text or "slow" in response.text)
                ), response.text
            stop.set()
        assert not lapses, f"the heartbeat lapsed {len(lapses)} times"
        assert answers.get(200, 0) >= 1  # a scrape given time enough is answered, slow or not
        assert backend._round.duration >= 2 * DELAY  # the flushes did cross the slow proxy
        proxy.delay = 0.0
        with anyio.fail_after(20):
            while True:
                response = await client.get("/metrics")
                if response.status_code == 200 and f"jobs_total {recorded}.0" in response.text:
                    break
                await anyio.sleep(0.05)
    direct.close()
    print(f"answers while slow: {answers}; flush errors: {backend.flush_errors}")
    assert backend.flush_errors == 0  # slow is not down: every flush went through


def test_a_flush_that_takes_half_the_heartbeat_counts_as_slow(
    proxy: DelayingProxy,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(proxy.port, flush_interval=0.1, heartbeat_ttl=1.0)
    Counter("jobs", "Jobs", registry=registry).inc()
    assert backend.flush_sync()
    assert backend.slow_flushes == 0
    proxy.delay = DELAY  # a round trip (0.6 s) is more than half of heartbeat_ttl
    assert backend.flush_sync()
    assert backend.slow_flushes >= 1
    health = {f.name: f.samples[0].value for f in backend.health_families() if f.samples}
    assert health["apytheus_redis_slow_flushes"] >= 1
    assert health["apytheus_redis_flush_duration_seconds"] >= 2 * DELAY
