"""Redis outages: recording never raises, nothing is lost, nothing is counted twice."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
import pytest
from loads import Load
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, generate_metrics
from apytheus.backends.redis import RedisBackend


@pytest.fixture
def own_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    """A server of the test's own (it gets stopped); AOF so a killed server keeps its data."""
    return redis_server_factory("--appendonly", "yes", "--appendfsync", "always")


def test_paused_redis_keeps_deltas_buffered_until_it_answers_again(
    own_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_redis_backend(own_server.port)
    load = Load(registry)
    load.record(100)
    assert backend.flush_sync()
    own_server.pause()
    try:
        with caplog.at_level(logging.WARNING, logger="apytheus"):
            load.record(50)  # recording never touches Redis: no error, no wait
            assert not backend.flush_sync()
            assert not backend.flush_sync()
        assert "flush to Redis failed" in caplog.text
        assert backend.flush_errors == 2
        assert backend._buffer.pending is not None
    finally:
        own_server.resume()
    assert backend.flush_sync()
    assert load.totals() == (150.0, 150.0)


def test_scraping_while_redis_is_down_raises_backend_unavailable(
    own_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    from apytheus.exceptions import BackendUnavailable

    make_redis_backend(own_server.port)
    Load(registry).record(1)
    own_server.kill()
    with pytest.raises(BackendUnavailable):
        generate_metrics(registry)


async def test_the_metrics_app_answers_503_while_redis_is_down(
    own_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    import httpx

    from apytheus import make_asgi_app

    make_redis_backend(own_server.port)
    Load(registry).record(1)
    own_server.kill()
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/metrics")
    assert response.status_code == 503
    assert "cannot read metrics from Redis" in response.text


async def test_an_outage_of_many_flush_intervals_loses_nothing_and_shows_in_health_metrics(
    own_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    default_registry: CollectorRegistry,
) -> None:
    """The real flusher task (not test-driven flushes): Redis is killed for more than
    40 flush intervals while the app keeps recording, then comes back (AOF). Recording
    never raised, every increment arrives exactly once, and the health metrics tell
    of the outage: failed flushes counted, the last good flush from before it."""
    interval = 0.05
    backend = make_redis_backend(
        own_server, flush_interval=interval, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    jobs = Counter("jobs", "Jobs")
    health = default_registry.get_sample_value
    worker = {"worker": backend.worker}

    async def until(predicate: Callable[[], bool], seconds: float) -> None:
        with anyio.fail_after(seconds):  # a bounded poll of the flusher's state
            while not predicate():  # noqa: ASYNC110 - the flusher sets no event
                await anyio.sleep(interval / 2)

    recorded = 0
    async with backend.lifespan():
        jobs.inc()
        recorded += 1
        await until(lambda: backend.last_flush > 0, 10)  # a first flush
        own_server.kill()
        down_at = time.time()
        # keep recording, as an app would, for at least 40 intervals and 3 failed flushes
        while time.time() - down_at < 40 * interval or backend.flush_errors < 3:
            jobs.inc()
            recorded += 1
            await anyio.sleep(interval / 5)
            assert time.time() - down_at < 30, "the flusher did not retry while Redis was down"
        errors_during = backend.flush_errors
        assert backend.last_flush < down_at  # no flush succeeded while Redis was down
        own_server.start()  # same port, same AOF
        up_at = time.time()
        # backoff is capped at 30 s (it doubled at most about 6 times here)
        await until(lambda: backend.last_flush >= up_at, 40)  # a flush after the restart
    assert jobs._series.value() == recorded  # what this process counted
    assert health("jobs_total") == recorded  # Redis' total: nothing lost, nothing twice
    assert health("apytheus_redis_flush_errors_total", worker) == backend.flush_errors
    assert backend.flush_errors >= errors_during >= 3
    assert health("apytheus_redis_buffered_fields", worker) == 0.0
    last = health("apytheus_redis_last_flush_timestamp_seconds", worker)
    assert last is not None and last >= up_at - 1  # the gap shows how long the outage was
