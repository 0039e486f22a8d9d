"""The examples run as users run them (real processes, real HTTP)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from celery_worker import (
    assert_gone,
    celery_worker,
    environment,
    exactly,
    metrics_server,
    run_tasks,
    scraped,
)
from conftest import wait_for
from redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_demo_serves_and_counts_every_request() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--demo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    counts = dict(
        re.findall(r'http_request_duration_seconds_count\{route="([^"]+)"\} (\S+)', out.stdout)
    )
    assert counts == {"/": "5.0", "/slow": "1.0"}
    slow_sum = re.search(r'_sum\{route="/slow"\} (\S+)', out.stdout)
    assert slow_sum is not None and float(slow_sum.group(1)) >= 0.3  # the awaited sleep is timed


@contextlib.contextmanager
def serving(example: str, port: int, log: Path) -> Iterator[httpx.Client]:
    """Run ``examples/<example>`` as a server process on ``port``; a client once it answers."""
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / example), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/metrics")
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(
                            f"the app did not answer:\n{log.read_text()}"
                        ) from None
                    time.sleep(0.05)
            yield client
    finally:
        server.terminate()  # only the process this test started
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def request_counts(metrics: httpx.Response) -> list[tuple[str, str, str]]:
    """``(route, status_code, count)`` of every GET a scrape shows."""
    assert metrics.status_code == 200
    return sorted(
        re.findall(
            r'http_request_duration_seconds_count\{method="GET",route="([^"]+)",'
            r'status_code="(\d+)"\} (\S+)',
            metrics.text,
        )
    )


def counts_once_recorded(
    client: httpx.Client, expected: list[tuple[str, str, str]]
) -> list[tuple[str, str, str]]:
    """The request counts of ``/metrics``, scraped until they are ``expected`` (10 s at most).

    The middleware records a request once its response is sent, so a scrape sent
    right after the last response may come before that request's record (a Django
    view's response comes from a worker thread). What a scrape shows once every
    request has finished is what must be right.
    """
    deadline = time.monotonic() + 10
    while True:
        found = request_counts(client.get("/metrics"))
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_aiohttp_app_serves_and_labels_requests_by_route_template(
    free_tcp_port: int, tmp_path: Path
) -> None:
    """examples/aiohttp_app.py as a real server process: a few requests, then its /metrics."""
    with serving("aiohttp_app.py", free_tcp_port, tmp_path / "aiohttp_app.log") as client:
        for i in range(3):
            assert client.get(f"/items/{i}").json() == {"item_id": str(i)}
        assert client.get("/wp-admin").status_code == 404
        expected = [("/items/{item_id}", "200", "3.0"), ("<unmatched>", "404", "1.0")]
        assert counts_once_recorded(client, expected) == expected


@pytest.mark.parametrize(
    ("example", "item_path", "template"),
    [
        ("litestar_app.py", "/items/{}", "/items/{item_id}"),
        ("quart_app.py", "/items/{}", "/items/<int:item_id>"),
        ("django_app.py", "/items/{}/", "/items/<int:item_id>/"),
    ],
)
def test_framework_example_serves_under_uvicorn_and_labels_by_its_template(
    example: str, item_path: str, template: str, free_tcp_port: int, tmp_path: Path
) -> None:
    """Each framework's example under uvicorn: 3 items and 2 scanner probes, then /metrics."""
    with serving(example, free_tcp_port, tmp_path / f"{example}.log") as client:
        for i in range(3):
            assert client.get(item_path.format(i)).json() == {"item_id": i}
        assert client.get("/wp-admin/setup.php").status_code == 404
        assert client.get("/.env").status_code == 404
        expected = [(template, "200", "3.0"), ("<unmatched>", "404", "2.0")]
        assert counts_once_recorded(client, expected) == expected


@pytest.mark.timeout(150)  # a Celery worker's start and warm shutdown
def test_celery_app_counts_and_times_every_task_of_its_prefork_children_exactly(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path, free_tcp_port: int
) -> None:
    """examples/celery_app/tasks.py (and metrics.py) in a real prefork worker, read by server.py.

    While the worker runs, the children's periodic flushes bring the scrape to
    exactly the tasks sent; the warm shutdown's exit flushes send nothing twice.
    """
    redis = redis_server_factory()  # the Celery queue and results stay apart from other tests'
    env = environment(redis, flush_interval=0.2)
    n = 60
    try:
        with (
            celery_worker(env, tmp_path / "worker.log", "--concurrency", "3") as worker,
            metrics_server(env, free_tcp_port, tmp_path / "server.log") as url,
        ):
            run_tasks(redis, n, worker)
            wait_for(lambda: scraped(url) == exactly(n), 20, f"{n} tasks in the scrape")
            children = worker.children()
            assert len(children) == 3
            assert worker.warm_shutdown() == 0, worker.log.read_text()
            assert_gone(children)
            assert scraped(url) == exactly(n)
    finally:
        redis.stop()
