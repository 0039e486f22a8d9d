"""Recycled workers: gunicorn's ``max_requests`` replaces workers under load, and Redis
holds what the live ones need, no more; ``livesum`` counts the live workers only.

Real gunicorn with uvicorn's worker class, a real redis-server, requests over real
sockets. Every worker that stops cleanly removes its heartbeat, mark, batch numbers and
gauge values once its last flush is applied.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import wait_for
from redis_server import RedisServer

from apytheus import CollectorRegistry, Gauge, Histogram
from apytheus.backends import InProcessBackend, load_backend
from apytheus.backends.redis import RedisBackend

pytest.importorskip("gunicorn", reason="gunicorn is a dev dependency: pip install -e '.[dev]'")

APP_DIR = Path(__file__).parent / "workers"
WORKERS = 2
MAX_REQUESTS = 40
REQUESTS = 600  # about 15 recycles
HEARTBEAT_TTL = 2.0
RETENTION = 2.0


class Gunicorn:
    """``gunicorn -k uvicorn.workers.UvicornWorker`` on a free port; stopped by its PID."""

    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "gunicorn", "recycled_app:app"]
        args += ["-k", "uvicorn.workers.UvicornWorker", "-w", str(WORKERS)]
        args += ["--max-requests", str(MAX_REQUESTS), "--max-requests-jitter", "0"]
        args += ["-b", f"127.0.0.1:{port}", "--chdir", str(APP_DIR), "--graceful-timeout", "10"]
        with log.open("wb") as out:
            self.process = subprocess.Popen(args, env=env, stdout=out, stderr=out)
        self.log = log

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the arbiter stops its workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def scraper(redis_server: RedisServer, key_prefix: str) -> Iterator[RedisBackend]:
    gc.collect()
    backend = load_backend(
        RedisBackend, {"url": redis_server.url, "key_prefix": key_prefix, "flush_interval": 3600}
    )
    assert isinstance(backend, RedisBackend)
    yield backend
    backend.close(flush=False)
    load_backend(InProcessBackend)


def fields(server: RedisServer, key_prefix: str) -> int:
    """Every field, member and entry under the key prefix (the test may scan; apytheus never)."""
    client = server.client()
    total = 0
    try:
        for key in client.scan_iter(match=f"{{{key_prefix}*"):
            kind = client.type(key)
            if kind == b"hash":
                total += client.hlen(key)
            elif kind == b"zset":
                total += client.zcard(key)
            elif kind == b"set":
                total += client.scard(key)
    finally:
        client.close()
    return total


@pytest.mark.timeout(180)  # gunicorn, ~600 requests and the pruning after them
def test_recycled_workers_leave_redis_bounded_and_livesum_exact(
    redis_server: RedisServer,
    scraper: RedisBackend,
    key_prefix: str,
    free_tcp_port: int,
    tmp_path: Path,
) -> None:
    config = {
        "url": redis_server.url,
        "key_prefix": key_prefix,
        "flush_interval": 0.1,
        "heartbeat_ttl": HEARTBEAT_TTL,
        # a stopped worker's batch numbers stay this long (at most 2 min), then are pruned
        "worker_retention": RETENTION,
    }
    env = {
        **os.environ,
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(config),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), str(APP_DIR)]),
    }
    registry = CollectorRegistry()
    up = Gauge("workers_up", "Workers serving", registry=registry, multiprocess_mode="livesum")
    duration = Histogram(
        "http_request_duration_seconds", "D", ["method", "route", "status_code"], registry=registry
    )
    del up, duration  # registered: the scrapes below read them through the registry

    def live() -> float:
        return registry.get_sample_value("workers_up") or 0.0

    def served() -> float:
        labels = {"method": "GET", "route": "/work", "status_code": "200"}
        return registry.get_sample_value("http_request_duration_seconds_count", labels) or 0.0

    server = Gunicorn(free_tcp_port, env, tmp_path / "gunicorn.log")
    ok = 0
    lock = threading.Lock()
    seen_live: list[float] = []
    try:
        with httpx.Client(base_url=server.url, headers={"Connection": "close"}) as client:

            def get() -> bool:
                try:
                    return client.get("/work", timeout=10).status_code == 200
                except httpx.TransportError:  # a worker that was stopping: not served
                    return False

            wait_for(get, timeout=30, what="gunicorn to serve")
            ok = 1
            wait_for(lambda: live() == WORKERS, timeout=15, what="both workers' gauge")
            warm = fields(redis_server, key_prefix)

            def load() -> None:
                nonlocal ok
                while True:
                    with lock:
                        if ok >= REQUESTS:
                            return
                    if get():
                        with lock:
                            ok += 1

            threads = [threading.Thread(target=load) for _ in range(4)]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                seen_live.append(live())  # during recycles
                time.sleep(0.02)
            for t in threads:
                t.join()
        wait_for(lambda: served() == ok, timeout=15, what="every request in Redis")
        wait_for(lambda: live() == WORKERS, timeout=HEARTBEAT_TTL + 2, what="livesum = 2")
        during = fields(redis_server, key_prefix)
        # the live workers prune the stopped ones' batch numbers once RETENTION has passed
        wait_for(
            lambda: fields(redis_server, key_prefix) <= warm + 4,
            timeout=RETENTION + 30,
            what="the stopped workers' batch numbers to be pruned",
        )
        settled = fields(redis_server, key_prefix)
        log = (tmp_path / "gunicorn.log").read_text()
    finally:
        server.stop()
    recycles = log.count("Maximum request limit")
    print(f"{ok} requests, {recycles} recycles, fields {warm} -> {during} -> {settled}")
    assert recycles >= 5, log[-2000:]  # the workers were recycled: the test proves something
    assert served() == ok  # exact: no request lost or counted twice across recycles
    assert max(seen_live) <= WORKERS, "a stopped worker still counted in livesum"
    # what dead workers left would grow this by about a dozen fields per recycle
    assert settled <= warm + 4, (warm, settled)
