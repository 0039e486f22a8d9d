"""Celery prefork children flush their last counts as they exit (`apytheus.celery`).

The worker tests start a redis-server of their own (broker, result backend and
metrics store), a real ``celery worker`` of examples/celery_app with the prefork
pool, and the example's metrics server (see tests/celery_worker.py).
tests/test_examples.py runs the example itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

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
from redis_server import RedisServer

import apytheus.celery
from apytheus import CollectorRegistry, Counter
from apytheus.backends import ScalarSeries
from apytheus.backends.redis import RedisBackend

pytestmark = pytest.mark.timeout(150)  # a worker start, its pool recycling and a warm shutdown


@pytest.fixture
def redis(redis_server_factory: Callable[..., RedisServer]) -> Iterator[RedisServer]:
    """A redis-server of this test's own: the Celery queue and results stay apart."""
    server = redis_server_factory()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- tests
def test_importing_apytheus_celery_does_not_import_celery() -> None:
    code = "import sys, apytheus.celery; assert 'celery' not in sys.modules, 'imported'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_redis_backend_imports_the_idna_codec_before_its_flusher_thread_connects() -> None:
    """A fork during the flusher's first connection (its lazy idna import) hung the child."""
    code = "import sys, apytheus.backends.redis; assert 'encodings.idna' in sys.modules"
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
