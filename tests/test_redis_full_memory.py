"""A full Redis (maxmemory, noeviction): what it refuses with OOM is sent again, none is lost.

Real processes on a real redis-server of the test's own: while a filler keeps Redis'
memory at its limit with keys that expire soon, some flush scripts of a batch get
``-OOM`` and others (the final mark among them) succeed. The whole batch must stay
pending and be sent again (the metrics applied already skip it by batch number): once
the filler stops and its keys expire, every increment and observation is in Redis,
exactly once.
"""

from __future__ import annotations

import gc
import json
import os
import random
import runpy
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.exceptions
from conftest import wait_for
from prometheus_client.parser import text_string_to_metric_families
from redis_server import RedisServer
from worker_process import WorkerProcess

import apytheus
from apytheus import CollectorRegistry, Counter, Histogram, generate_metrics
from apytheus._samples import floatstr
from apytheus.backends import InProcessBackend, load_backend
from apytheus.backends.redis import RedisBackend
from apytheus.metrics import DEFAULT_BUCKETS

WORKER = Path(__file__).parent / "workers" / "full_memory.py"
_worker = runpy.run_path(str(WORKER))  # its plan and buckets; the metrics it makes in main()
PLAN: Callable[[int, int, int], Iterator[Any]] = _worker["plan"]
SIZE_BUCKETS: tuple[float, ...] = _worker["SIZE_BUCKETS"]

WORKERS = 3
EVENTS = 4_000  # per worker; each is 2 counter increments and 2 histogram observations
RECORD_SECONDS = 3.0
HEADROOM = 4 * 2**20  # maxmemory: this much above what Redis used at start

Key = tuple[str, tuple[tuple[str, str], ...]]


class Filler:
    """A thread that keeps Redis' memory at its limit with keys that expire soon (SET PX)."""

    def __init__(self, server: RedisServer, seed: int) -> None:
        self.client = server.client()
        self.rng = random.Random(seed)
        self.refused = 0  # its SETs that Redis refused with OOM
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="filler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the filler did not stop"
        self.client.close()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        n = 0
        try:
            while not self._stop.is_set():
                pipe = self.client.pipeline(transaction=False)
                for _ in range(8):
                    n += 1
                    value = b"x" * self.rng.randrange(1_000, 16_000)
                    pipe.set(f"fill:{n}", value, px=self.rng.randrange(20, 300))
                for r in pipe.execute(raise_on_error=False):
                    if isinstance(r, redis.exceptions.OutOfMemoryError):
                        self.refused += 1
                    elif isinstance(r, Exception):
                        raise r
        except BaseException as exc:  # stop() raises it in the test
            self.error = exc


def start_worker(env: dict[str, str], seed: int, index: int, log: Path) -> WorkerProcess:
    """A worker process (tests/workers/full_memory.py) recording its share of the plan."""
    args = [str(WORKER), str(seed), str(index), str(EVENTS), str(RECORD_SECONDS)]
    return WorkerProcess(args, env, log)


def expected_samples(seed: int) -> dict[Key, float]:
    """Every sample the workers' plans add up to (all amounts are exact in doubles)."""
    out: defaultdict[Key, float] = defaultdict(float)

    def observe(name: str, labels: tuple[tuple[str, str], ...], bounds: Any, v: float) -> None:
        out[(f"{name}_count", labels)] += 1
        out[(f"{name}_sum", labels)] += v
        for b in (*bounds, float("inf")):
            out[(f"{name}_bucket", tuple(sorted((*labels, ("le", floatstr(b))))))] += v <= b

    for worker in range(WORKERS):
        for e in PLAN(seed, worker, EVENTS):
            out[("requests_total", (("method", e.method), ("route", e.route)))] += 1
            out[("sent_bytes_total", (("route", e.route),))] += e.size
            observe("latency_seconds", (("route", e.route),), DEFAULT_BUCKETS, e.latency)
            observe("size_bytes", (("method", e.method),), SIZE_BUCKETS, e.size)
    return {k: float(v) for k, v in out.items()}


def samples_in_redis(server: RedisServer, key_prefix: str) -> dict[Key, float]:
    """Every sample a scrape of the workers' metrics shows (read through a RedisBackend)."""
    registry = CollectorRegistry()
    Counter("requests", "Requests", ["route", "method"], registry=registry)
    Counter("sent_bytes", "Bytes sent", ["route"], registry=registry)
    Histogram("latency_seconds", "Latency", ["route"], registry=registry)
    Histogram("size_bytes", "Response sizes", ["method"], buckets=SIZE_BUCKETS, registry=registry)
    gc.collect()  # metrics of earlier tests would follow the switch and flush here too
    backend = load_backend(RedisBackend, {"url": server.url, "key_prefix": key_prefix})
    assert isinstance(backend, RedisBackend)
    try:
        text = generate_metrics(registry)
    finally:
        backend.close()
        load_backend(InProcessBackend)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def oom_replies(client: redis.Redis) -> int:
    """How many replies Redis refused with OOM (the filler's SETs and the flush scripts')."""
    return int(client.info("errorstats").get("errorstat_OOM", {}).get("count", 0))


def total(samples: dict[Key, float], name: str) -> float:
    """The sum of the samples named ``name`` over every series."""
    return sum(v for (n, _), v in samples.items() if n == name)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_updates_refused_by_a_full_redis_are_sent_again_and_the_totals_are_exact(
    redis_server_factory: Callable[..., RedisServer],
    key_prefix: str,
    tmp_path: Path,
    seed: int,
) -> None:
    """Workers record while Redis is full; once it has room again every sample is exact."""
    server = redis_server_factory()
    client = server.client()
    limit = int(client.info("memory")["used_memory"]) + HEADROOM
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", limit)
    config = {"url": server.url, "key_prefix": key_prefix, "flush_interval": 0.05}
    env = {
        **os.environ,
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(config),
    }
    filler = Filler(server, seed)
    workers: list[WorkerProcess] = []
    try:
        filler.start()
        try:
            wait_for(lambda: filler.refused > 0, timeout=10, what="the filler to fill Redis")
            workers.extend(
                start_worker(env, seed, i, tmp_path / f"worker{i}.log") for i in range(WORKERS)
            )
            for w in workers:
                ready, _, path = w.line().partition(" ")
                assert (ready, path) == ("ready", apytheus.__file__)  # the code under test
            for w in workers:
                assert w.line() == "recorded"  # while Redis was full
        finally:
            filler.stop()
        wait_for(
            lambda: int(client.info("memory")["used_memory"]) < limit - HEADROOM // 2,
            timeout=10,
            what="the filler's keys to expire",
        )
        health = [w.exit() for w in workers]  # each flushes a last time, with room in Redis
        scripts_refused = oom_replies(client) - filler.refused
    finally:
        for w in workers:
            w.stop()
        client.close()
    print(f"seed {seed}: {scripts_refused} flush scripts refused with OOM; workers: {health}")
    assert scripts_refused > 0, "Redis never refused a flush script: the test proves nothing"
    assert sum(h["flush_errors"] for h in health) > 0  # and the workers saw it
    expected = expected_samples(seed)
    found = samples_in_redis(server, key_prefix)
    counts = [(total(found, n), total(expected, n)) for n in ("requests_total", "size_bytes_count")]
    print(f"seed {seed}: (in Redis, recorded) increments, observations: {counts}")
    wrong = {k: (found.get(k), v) for k, v in expected.items() if found.get(k) != v}
    assert not wrong, (
        f"{len(wrong)} of {len(expected)} samples wrong; in Redis vs recorded: {counts}"
    )
    assert found.keys() == expected.keys()
    assert [(h["dropped_updates"], h["pending"]) for h in health] == [(0, False)] * WORKERS
