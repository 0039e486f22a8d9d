"""Totals in Redis are the doubles one process would have: infinities, tiny values, any order."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Histogram
from apytheus.backends.redis import RedisBackend


def test_an_infinite_counter_is_exposed_as_inf_not_nan(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    backend = make_redis_backend(redis_server)
    c = Counter("c", "C", registry=registry)
    c.inc(math.inf)
    assert backend.flush_sync()
    c.inc()
    assert backend.flush_sync()
    assert registry.get_sample_value("c_total") == math.inf


@pytest.mark.parametrize(
    "amounts",
    [
        [1.2345678901234567e-10],  # HINCRBYFLOAT kept 8 digits of it
        [5e-324, 5e-324],  # and turned these into 0
        [1e-20, 1.0, -1.0],
        [0.1, 0.2],  # 0.30000000000000004 in doubles, as in one process
        [1e308, 1e308],  # overflows to +Inf
        [math.inf, -math.inf],  # NaN
    ],
)
def test_totals_in_redis_are_the_doubles_one_process_has(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    amounts: list[float],
) -> None:
    """Deltas are added in doubles and stored with 17 significant digits: a total read
    from Redis is the very double a single process would expose."""
    backend = make_redis_backend(redis_server)
    h = Histogram("h", "H", buckets=[1.0], registry=registry)  # its sum takes any float
    expected = 0.0
    for amount in amounts:
        h.observe(amount)
        expected += amount
        assert backend.flush_sync()  # one delta per flush: Redis adds them up
    got = registry.get_sample_value("h_sum")
    assert got == expected or (math.isnan(expected) and got is not None and math.isnan(got))
    assert registry.get_sample_value("h_count") == len(amounts)


def test_an_infinite_total_stays_infinite_whatever_another_worker_adds(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """Another worker stored a +Inf histogram sum; this one adds -1: +Inf it stays (the
    old script took the infinity's sign from the delta)."""
    backend = make_redis_backend(redis_server)
    h = Histogram("h", "H", buckets=[1.0], registry=registry)
    with redis_server.client() as client:
        client.hset(f"{{{key_prefix}|h}}:v", "[]\tsum", "+Inf")
    h.observe(-1)
    assert backend.flush_sync()
    assert registry.get_sample_value("h_sum") == math.inf
