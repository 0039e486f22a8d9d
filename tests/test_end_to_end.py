"""End to end: uvicorn --workers 4, one Redis, a real Prometheus scraping every second."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypedDict

import anyio
import httpx
import pytest
from conftest import require_tool, wait_for
from redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 2000


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process this test started, by its PID (SIGTERM, then SIGKILL)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def app_port(
    redis_server: RedisServer, key_prefix: str, free_tcp_port_factory: Callable[[], int]
) -> Iterator[int]:
    port = free_tcp_port_factory()
    config = {"url": redis_server.url, "key_prefix": key_prefix, "flush_interval": 0.2}
    env = {
        **os.environ,
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(config),
    }
    args = [sys.executable, "-m", "uvicorn", "examples.fastapi_redis.app:app", "--workers", "4"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(args, cwd=ROOT, env=env)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/metrics"), 60, "uvicorn workers")
        yield port
    finally:
        stop(server)


@pytest.fixture
def prometheus(
    app_port: int, tmp_path: Path, free_tcp_port_factory: Callable[[], int]
) -> Iterator[str]:
    binary = require_tool("prometheus", "prometheus")
    config = tmp_path / "prometheus.yml"
    template = (ROOT / "examples" / "fastapi_redis" / "prometheus.yml").read_text()
    config.write_text(template.replace("127.0.0.1:8000", f"127.0.0.1:{app_port}"))
    port = free_tcp_port_factory()
    args = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}"]
    args += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{url}/-/ready"), 60, "prometheus to be ready")
        yield url
    finally:
        stop(process)


class InstantSample(TypedDict):
    """One sample of a Prometheus instant query's result (``resultType`` ``vector``)."""

    metric: dict[str, str]
    value: list[float | str]  # [unix time, "the value"]


def query(prometheus: str, promql: str) -> list[InstantSample]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    result: list[InstantSample] = response.json()["data"]["result"]
    return result


def has_data(prometheus: str, promql: str) -> bool:
    return bool(query(prometheus, promql))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the load generator's loop only
async def test_prometheus_sees_every_request_of_every_worker_by_route_template(
    app_port: int, prometheus: str
) -> None:
    ids = [random.randrange(1_000_000) for _ in range(REQUESTS)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app_port}", timeout=30) as client:

        async def send(chunk: list[int]) -> None:
            for item_id in chunk:
                assert (await client.get(f"/items/{item_id}")).status_code == 200

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(send, ids[i::20])

    promql = 'sum(http_request_duration_seconds_count{route="/items/{item_id}"})'

    def total() -> float:
        found = query(prometheus, promql)
        return float(found[0]["value"][1]) if found else 0.0

    deadline = time.monotonic() + 90
    while (seen := total()) != REQUESTS:
        assert seen <= REQUESTS, f"Prometheus counted {seen} requests, more than were sent"
        assert time.monotonic() < deadline, f"Prometheus saw {seen} of {REQUESTS} requests"
        await anyio.sleep(0.5)
    routes = {
        s["metric"]["route"] for s in query(prometheus, "http_request_duration_seconds_count")
    }
    assert routes == {"/items/{item_id}"}, f"raw paths leaked into labels: {routes}"
    kinds = query(prometheus, "sum(items_viewed_total)")
    assert float(kinds[0]["value"][1]) == REQUESTS
    check_grafana_dashboard(prometheus)


def check_grafana_dashboard(prometheus: str) -> None:
    """Every query of examples/grafana runs on this Prometheus; rate and latency have data."""
    dashboard = json.loads((ROOT / "examples" / "grafana" / "apytheus-http.json").read_text())
    variables = {"$__rate_interval": "1m", "$route": ".*"}
    with_data = {"Requests per second, by route", "Latency percentiles, by route"}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in variables.items():
                expr = expr.replace(name, value)
            response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
            assert response.status_code == 200, (panel["title"], expr, response.text)
            if panel["title"] in with_data:  # rate() needs two scrapes since the requests
                wait_for(partial(has_data, prometheus, expr), 20, f"data for {expr}")
