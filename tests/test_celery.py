"""Celery prefork workers count every task exactly: a real worker, a real Redis, real scrapes.

Each test starts its own redis-server (broker, result backend and metrics store), a
``celery worker`` of examples/celery_app with the prefork pool and the example's
metrics server, and stops them by their PIDs (the pool's children included).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import wait_for
from redis_server import RedisServer

import apytheus.celery
from apytheus import CollectorRegistry, Counter
from apytheus.backends import ScalarSeries
from apytheus.backends.redis import RedisBackend

ROOT = Path(__file__).resolve().parent.parent
TASK = "examples.celery_app.tasks.checksum"
pytestmark = pytest.mark.timeout(150)  # a worker start, its pool recycling and a warm shutdown


# --------------------------------------------------------------------------- processes
def started_at(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot); None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def children_of(pid: int) -> dict[int, str]:
    """The live children of ``pid``, each with its start time (so a reused PID is not it)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            if int(fields[1]) == pid and fields[0] != "Z":
                found[int(entry.name)] = fields[19]
    return found


def kill_if_same(pid: int, start: str) -> None:
    """SIGKILL ``pid`` if it is still the process that started at ``start``."""
    if started_at(pid) == start:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Worker:
    """``celery -A <app> worker`` with the prefork pool, as a process of this test."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log
        self.seen: dict[int, str] = {}  # pool children seen, for the cleanup

    def children(self) -> dict[int, str]:
        """The pool's live children (remembered, so that they are stopped in any case)."""
        found = children_of(self.process.pid)
        self.seen.update(found)
        return found

    def warm_shutdown(self, timeout: float = 60) -> int:
        """SIGTERM: Celery finishes the running tasks, stops its children, then exits."""
        self.children()
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Kill what is left of this worker (by PID): the main process, then its children."""
        if self.process.poll() is None:
            self.children()
            self.process.kill()
            self.process.wait(timeout=15)
        for pid, start in self.seen.items():
            kill_if_same(pid, start)


@contextmanager
def celery_worker(
    env: dict[str, str], log: Path, *options: str, app: str = "examples.celery_app.tasks"
) -> Iterator[Worker]:
    command = [sys.executable, "-m", "celery", "-A", app, "worker", "--pool", "prefork"]
    command += ["--loglevel", "INFO", "--without-heartbeat", "--without-gossip"]
    command += ["--without-mingle", "--hostname", f"test-{os.getpid()}@%h", *options]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    worker = Worker(process, log)
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def metrics_server(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """examples/celery_app/server.py on ``port``; yields its /metrics URL once it answers."""
    command = [sys.executable, "-m", "examples.celery_app.server", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--addr", "127.0.0.1"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: answers(url, process), 30, f"the metrics server:\n{log}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, f"the metrics server exited with {process.returncode}"
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# --------------------------------------------------------------------------- the test's side
@pytest.fixture
def redis(redis_server_factory: Callable[..., RedisServer]) -> Iterator[RedisServer]:
    """A redis-server of this test's own: the Celery queue and results stay apart."""
    server = redis_server_factory()
    try:
        yield server
    finally:
        server.stop()


def environment(redis: RedisServer, flush_interval: float) -> dict[str, str]:
    """The environment of the worker and of the metrics server, as a deployment sets it."""
    config = {"url": redis.url, "key_prefix": "jobs", "flush_interval": flush_interval}
    return {
        **os.environ,
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(config),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "workers")]),
    }


def run_tasks(redis: RedisServer, n: int, worker: Worker, timeout: float = 90) -> list[int]:
    """Send ``n`` tasks by name and wait for every result; returns the PIDs that ran them."""
    from celery import Celery  # type: ignore[import-untyped]

    url = f"redis://127.0.0.1:{redis.port}/1"
    client = Celery("test-client", broker=url, backend=url)
    try:
        results = [client.send_task(TASK, args=[f"image-{i}"], kwargs={}) for i in range(n)]
        pids = []
        for result in results:
            assert worker.process.poll() is None, worker.log.read_text()
            pids.append(int(result.get(timeout=timeout)["pid"]))
            worker.children()
        return pids
    finally:
        client.close()


def scraped(url: str) -> dict[str, float]:
    """The example's two series, as the metrics server shows them."""
    text = httpx.get(url, timeout=10).text
    wanted = (
        r'^(celery_tasks_done_total|celery_task_duration_seconds_count)\{task="checksum"\} (\S+)$'
    )
    return {name: float(value) for name, value in re.findall(wanted, text, re.MULTILINE)}


def exactly(n: int) -> dict[str, float]:
    return {"celery_tasks_done_total": n, "celery_task_duration_seconds_count": n}


def assert_gone(children: dict[int, str]) -> None:
    left = [pid for pid, start in children.items() if started_at(pid) == start]
    assert left == [], f"pool children still running after the worker exited: {left}"


# --------------------------------------------------------------------------- tests
def test_importing_apytheus_celery_does_not_import_celery() -> None:
    code = "import sys, apytheus.celery; assert 'celery' not in sys.modules, 'imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_hook_flushes_and_closes_the_backend_when_celery_signals_a_child_exit(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
    key_prefix: str,
) -> None:
    from celery.signals import worker_process_shutdown  # type: ignore[import-untyped]

    backend = make_redis_backend(redis_server)  # its flusher waits an hour
    jobs = Counter("jobs", "Jobs", registry=registry)
    jobs.inc(3)
    apytheus.celery.install()
    apytheus.celery.install()  # connected once all the same
    answers = worker_process_shutdown.send(sender="celery@test", pid=os.getpid(), exitcode=0)
    assert len([r for r, _ in answers if r is apytheus.celery.close_backend]) == 1
    assert backend._closed
    reader = RedisBackend({"url": redis_server.url, "key_prefix": key_prefix})
    try:
        spec = jobs._family.spec
        found = reader.collect([spec])[spec]
        assert [s.value() for s in found if isinstance(s, ScalarSeries)] == [3.0]
    finally:
        reader.close(flush=False)


def test_every_task_of_a_prefork_pool_is_counted_and_timed_exactly(
    redis: RedisServer, tmp_path: Path, free_tcp_port: int
) -> None:
    """While the worker runs, the children's periodic flushes bring the scrape to exactly N."""
    env = environment(redis, flush_interval=0.2)
    n = 60
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
        assert scraped(url) == exactly(n)  # the exit flushes sent nothing twice


def test_children_recycled_by_max_tasks_per_child_flush_their_last_tasks(
    redis: RedisServer, tmp_path: Path, free_tcp_port: int
) -> None:
    """With no periodic flush at all, every count arrives through the children's exits.

    A child exits after 3 tasks (``--max-tasks-per-child``), the last ones at the
    warm shutdown: each ends with ``os._exit``, and only `apytheus.celery.install()`'s
    hook flushes what it recorded.
    """
    env = environment(redis, flush_interval=3600)
    n = 20
    log = tmp_path / "worker.log"
    with (
        celery_worker(env, log, "--concurrency", "2", "--max-tasks-per-child", "3") as worker,
        metrics_server(env, free_tcp_port, tmp_path / "server.log") as url,
    ):
        pids = run_tasks(redis, n, worker)
        assert len(set(pids)) >= 7  # 20 tasks, at most 3 per child
        assert worker.warm_shutdown() == 0, log.read_text()
        assert_gone(worker.seen)
        assert scraped(url) == exactly(n)


def test_without_the_hook_the_childrens_last_counts_are_lost(
    redis: RedisServer, tmp_path: Path, free_tcp_port: int
) -> None:
    """The same worker without `apytheus.celery.install()`: Celery's children skip atexit."""
    env = environment(redis, flush_interval=3600)
    options = ("--concurrency", "2", "--max-tasks-per-child", "3")
    log = tmp_path / "worker.log"
    with (
        celery_worker(env, log, *options, app="celery_unhooked") as worker,
        metrics_server(env, free_tcp_port, tmp_path / "server.log") as url,
    ):
        run_tasks(redis, 9, worker)
        assert worker.warm_shutdown() == 0, log.read_text()
        got = scraped(url)
        assert got.get("celery_tasks_done_total", 0.0) == 0.0
        assert got.get("celery_task_duration_seconds_count", 0.0) == 0.0
