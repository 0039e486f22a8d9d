"""What Redis refuses for good drops one metric only; a bad label value is refused at the call."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter
from apytheus.backends.redis import RedisBackend
from apytheus.exceptions import LabelValidationException


def test_a_key_of_another_type_drops_only_that_metric_once(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_redis_backend(redis_server)
    with redis_server.client() as client:
        client.set(f"{{{key_prefix}|broken}}:c", "a string, not a hash")
    broken = Counter("broken", "B", registry=registry)
    fine = Counter("fine", "F", registry=registry)
    broken.inc()
    fine.inc(7)
    with caplog.at_level(logging.ERROR, logger="apytheus"):
        assert backend.flush_sync()
    assert "refused the updates of ['broken'] for good" in caplog.text
    assert backend.dropped_updates == 1
    fine.inc()
    for _ in range(3):
        assert backend.flush_sync()
    with caplog.at_level(logging.CRITICAL, logger="apytheus"):
        assert registry.get_sample_value("fine_total") == 8.0  # the broken one is left out
    with redis_server.client() as client:  # applied at most once, never repeated
        assert client.hget(f"{{{key_prefix}|broken}}:v", "[]") in (None, b"1")


def test_a_total_that_is_not_a_number_drops_that_metric_only(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_redis_backend(redis_server)
    with redis_server.client() as client:
        client.hset(f"{{{key_prefix}|broken}}:v", "[]", "not a number")
    Counter("broken", "B", registry=registry).inc()
    fine = Counter("fine", "F", registry=registry)
    fine.inc(3)
    with caplog.at_level(logging.ERROR, logger="apytheus"):
        assert backend.flush_sync()
    assert "refused the updates of ['broken'] for good" in caplog.text
    assert backend.dropped_updates == 1
    with redis_server.client() as client:
        assert client.hget(f"{{{key_prefix}|fine}}:v", "[]") == b"3"
        assert client.hget(f"{{{key_prefix}|broken}}:v", "[]") == b"not a number"


def test_a_label_value_that_is_not_unicode_is_refused_at_the_call_site(
    registry: CollectorRegistry,
) -> None:
    c = Counter("files", "F", ["path"], registry=registry)
    with pytest.raises(LabelValidationException, match="not valid Unicode"):
        c.labels(path="/files/\udcff")
