"""A real Celery worker of examples/celery_app and its metrics server, as processes of a test.

Every process is stopped by its PID: the worker's pool children too, each checked
by its start time so that a reused PID is never hit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from conftest import wait_for
from redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
TASK = "examples.celery_app.tasks.checksum"


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
