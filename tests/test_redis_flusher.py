"""The flusher never dies nor holds others up: long outages, failing functions, late connecting."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Gauge
from apytheus.backends.redis import RedisBackend


def test_the_flusher_survives_a_very_long_outage_and_errors() -> None:
    from apytheus.backends._flusher import Flusher

    def boom() -> bool:
        raise RuntimeError("unexpected")

    flusher = Flusher(boom, interval=1.0)
    flusher.failures = 5000  # days of failures
    assert 0 < flusher.delay() <= 30
    flusher._once()  # logs, never raises
    assert flusher.failures == 5001


def test_a_set_function_that_raises_does_not_lose_other_deltas(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_redis_backend(redis_server)
    broken = [True]

    def level() -> float:
        if broken[0]:
            raise RuntimeError("sensor offline")
        return 3.0

    Gauge("level", "L", registry=registry).set_function(level)
    c = Counter("jobs", "Jobs", registry=registry)
    c.inc(5)
    with caplog.at_level(logging.CRITICAL, logger="apytheus"):
        assert backend.flush_sync()
        assert backend.flush_sync()
    broken[0] = False
    assert backend.flush_sync()
    assert registry.get_sample_value("jobs_total") == 5.0


def test_a_cluster_backend_connects_on_first_use_not_when_created() -> None:
    backend = RedisBackend({"url": "redis://127.0.0.1:1/0", "cluster": True})
    backend.close(flush=False)
