"""Exemplars across workers: every worker's scrape shows the newest one from any worker.

Four real worker processes share one real redis-server; each records with an
exemplar of its own, one after the other, so the last one's is the newest. One of them
also holds exemplars that cannot travel (100k characters, no finite time): its counts
arrive all the same.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest
from redis_server import RedisServer
from test_multiprocess import WORKER, finish, worker_env
from test_protobuf_encoder import decode


def start(env: dict[str, str], loop: str, name: str, bad: bool) -> subprocess.Popen[bytes]:
    """A worker that recorded (and flushed) its exemplars, waiting to be scraped."""
    args = [sys.executable, str(WORKER), "exemplars", loop, name, "bad" if bad else "good"]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    worker = subprocess.Popen(args, env=env, **pipes)  # type: ignore[call-overload]
    assert worker.stdout is not None
    line = worker.stdout.readline()
    if line != b"recorded\n":
        finish(worker, kill=True)
        raise AssertionError(f"worker {name}: {line!r}, {worker.stderr.read().decode()}")
    return worker  # type: ignore[no-any-return]


def scrape(worker: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The worker's OpenMetrics text and decoded protobuf families, by name."""
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(b"scrape\n")
    worker.stdin.flush()
    found = json.loads(worker.stdout.readline())
    finish(worker)
    families = {f.name: f for f in decode(base64.b64decode(found["pb"]))}
    return {"om": found["om"], "pb": families}


def labels(exemplar: Any) -> dict[str, str]:
    return {p.name: p.value for p in exemplar.label}


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_every_workers_scrape_shows_the_newest_exemplar_from_any_worker(
    redis_server: RedisServer, key_prefix: str, loop: str
) -> None:
    env = worker_env(redis_server, key_prefix)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(4):
            workers.append(start(env, loop, f"w{n}", bad=n == 1))  # noqa: PERF401 - kept if the next fails
        scrapes = [scrape(w) for w in workers]
    finally:
        for w in workers:
            finish(w, kill=True)
    for found in scrapes:
        om = found["om"]
        assert 'jobs_total{queue="q"} 404.0 # {worker="w3"} 1.0 ' in om
        assert 'job_seconds_bucket{le="1.0"} 404.0 # {worker="w3"} 0.5 ' in om
        assert 'job_seconds_bucket{le="+Inf"} 808.0 # {worker="w3"} 2.0 ' in om
        assert "xxxx" not in om and "nan" not in om
        (jobs,) = found["pb"]["jobs_total"].metric
        assert jobs.counter.value == 404
        assert labels(jobs.counter.exemplar) == {"worker": "w3"}
        (job_time,) = found["pb"]["job_seconds"].metric
        histogram = job_time.histogram
        assert histogram.sample_count == 808
        assert sum(histogram.positive_delta) > 0  # native buckets
        # a native histogram's exemplars, with their timestamps, as Prometheus reads them
        shown = sorted((e.value, labels(e)["worker"]) for e in histogram.exemplars)
        assert shown == [(0.5, "w3"), (2.0, "w3")]
        assert all(e.HasField("timestamp") for e in histogram.exemplars)
