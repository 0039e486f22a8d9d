"""End to end: trace exemplars from uvicorn workers, through Redis, stored by a real Prometheus.

tests/traced_app.py runs twice on one Redis key prefix: ``--workers 3`` on one port takes
every request (each in a sampled OpenTelemetry SDK span, `MetricsMiddleware(exemplars=
"otel")`), and one more worker on another port takes no request at all and is the only
one Prometheus scrapes (2.42, ``--enable-feature=exemplar-storage``, OpenMetrics). So
every exemplar Prometheus stores was recorded by another worker and reached the
scraped one through Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from conftest import require_tool, wait_for
from redis_server import RedisServer
from test_end_to_end import accept_recorder, answers, running_prometheus, stop

ROOT = Path(__file__).resolve().parent.parent
ROUTE = "/traced/{n}"
EXEMPLAR_QUERY = f'http_request_duration_seconds_bucket{{route="{ROUTE}"}}'
OPENMETRICS = "application/openmetrics-text"


class Servers(NamedTuple):
    requests: int  # the port of `--workers 3`, which takes the requests
    scraped: int  # the port of the one worker Prometheus scrapes (no requests)


@contextmanager
def uvicorn(env: dict[str, str], port: int, workers: int) -> Iterator[None]:
    """tests/traced_app.py under uvicorn on ``port``; stopped by PID."""
    args = [sys.executable, "-m", "uvicorn", "traced_app:app", "--app-dir", "tests"]
    args += ["--workers", str(workers), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen([*args, "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/metrics"), 60, f"uvicorn on {port}")
        yield
    finally:
        stop(server)


@pytest.fixture
def servers(
    redis_server: RedisServer, key_prefix: str, free_tcp_port_factory: Callable[[], int]
) -> Iterator[Servers]:
    require_tool("prometheus", "prometheus")  # before starting servers it would not use
    config = {"url": redis_server.url, "key_prefix": key_prefix, "flush_interval": 0.2}
    env = {
        **os.environ,
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(config),
    }
    found = Servers(free_tcp_port_factory(), free_tcp_port_factory())
    with uvicorn(env, found.requests, 3), uvicorn(env, found.scraped, 1):
        yield found


class Traced(NamedTuple):
    trace_id: str
    pid: int  # of the worker that answered the request (and recorded its exemplar)


def get(port: int, path: str, accept: str = "*/*") -> httpx.Response:
    """A request on a new connection: whichever worker accepts it answers."""
    headers = {"Accept": accept, "Connection": "close"}
    response = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response


def traced_request(port: int, n: int) -> Traced:
    response = get(port, f"/traced/{n}")
    return Traced(response.json()["trace_id"], int(response.headers["x-worker-pid"]))


def stored_exemplars(prometheus: str, since: float) -> list[dict[str, Any]]:
    """Every exemplar Prometheus holds for the route's buckets, from ``since`` until now."""
    params: dict[str, str | float] = {
        "query": EXEMPLAR_QUERY,
        "start": since,
        "end": time.time() + 60,
    }
    response = httpx.get(f"{prometheus}/api/v1/query_exemplars", params=params, timeout=5)
    response.raise_for_status()
    return [e for series in response.json()["data"] for e in series["exemplars"]]


@pytest.mark.timeout(180)  # two uvicorn servers, Prometheus, and scrapes until exemplars land
def test_prometheus_stores_the_trace_ids_of_exemplars_recorded_by_other_workers(
    servers: Servers, tmp_path: Path, free_tcp_port_factory: Callable[[], int]
) -> None:
    since = time.time() - 60
    recorder = free_tcp_port_factory()
    job = "  - job_name: recorder\n    static_configs:\n"
    job += f'      - targets: ["127.0.0.1:{recorder}"]\n'
    flag = "--enable-feature=exemplar-storage"
    port = free_tcp_port_factory()
    with (
        accept_recorder(recorder) as accepts,
        running_prometheus(servers.scraped, tmp_path, port, flag, config_extra=job) as prometheus,
    ):
        scraped_pid = int(get(servers.scraped, "/metrics").headers["x-worker-pid"])

        def stored_ids() -> set[str]:
            return {e["labels"]["trace_id"] for e in stored_exemplars(prometheus, since)}

        def stored(trace_id: str) -> bool:
            return trace_id in stored_ids()

        # One request at a time, each on a new connection; Prometheus stores each one's
        # exemplar (the newest of its bucket) before the next is sent. Until two of
        # the three workers have had theirs stored.
        produced: dict[str, int] = {}  # trace id -> the worker that recorded it
        while len(set(produced.values())) < 2:
            assert len(produced) < 12, f"12 new connections all went to {set(produced.values())}"
            last = traced_request(servers.requests, len(produced))
            produced[last.trace_id] = last.pid
            wait_for(partial(stored, last.trace_id), 30, f"Prometheus to store {last}")
        assert scraped_pid not in produced.values()
        assert set(produced) <= stored_ids()

        # Every worker's scrape shows the newest: the one that recorded it, another of
        # the three, and the one that took no request.
        shown_by: set[int] = set()

        def shown_by_another_worker() -> bool:
            for port in servers:
                response = get(port, "/metrics", OPENMETRICS)
                if f'trace_id="{last.trace_id}"' in response.text:
                    shown_by.add(int(response.headers["x-worker-pid"]))
            return scraped_pid in shown_by and bool(shown_by - {last.pid, scraped_pid})

        wait_for(shown_by_another_worker, 30, f"{last} in another of the three's scrape")

        found = stored_exemplars(prometheus, since)
        for exemplar in found:
            labels = exemplar["labels"]
            assert set(labels) == {"trace_id", "span_id"}, exemplar
            assert len(labels["span_id"]) == 16, exemplar
            assert labels["trace_id"] in produced, f"a trace id no request had: {exemplar}"
        # What Prometheus asked for (with exemplar storage on), and what the app answered
        wait_for(lambda: bool(accepts), 10, "a scrape of the recorder")
        assert {a.split(";")[0] for a in accepts} == {OPENMETRICS}, accepts
        answer = get(servers.scraped, "/metrics", accepts[0])
        assert answer.headers["content-type"].startswith(OPENMETRICS)
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
        shop = [t for t in targets["activeTargets"] if t["labels"]["job"] == "shop"]
        assert [(t["health"], t["lastError"]) for t in shop] == [("up", "")]
    workers = sorted(set(produced.values()))
    print(
        f"\n{len(produced)} traced requests to workers {workers}, each stored by Prometheus"
        f" scraping worker {scraped_pid} (no requests); the newest, {last}, shown by workers"
        f" {sorted(shown_by)}; query_exemplars {EXEMPLAR_QUERY} gave {len(found)}, the newest"
        f" {max(found, key=lambda e: float(e['timestamp']))}; Accept: {accepts[0]}"
    )
