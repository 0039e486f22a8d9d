"""A process forked after metrics were created starts fresh and never re-sends its parent's data."""

from __future__ import annotations

import os
import threading

import pytest

from apytheus import CollectorRegistry, Counter, Gauge
from apytheus.backends.redis import RedisBackend


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_has_its_own_worker_and_sends_only_its_own_deltas(
    redis_backend: RedisBackend, registry: CollectorRegistry
) -> None:
    c = Counter("jobs", "Jobs", registry=registry)
    g = Gauge("workers", "Workers alive", registry=registry)
    c.inc(5)
    g.inc()
    assert redis_backend.flush_sync()
    c.inc(2)  # recorded but not flushed by the parent yet
    parent_worker = redis_backend.worker
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: record, flush, report, leave without atexit handlers
        code = 1
        try:
            c.inc(3)
            flushed = redis_backend.flush_sync()
            os.write(write_end, f"{flushed} {redis_backend.worker}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        ok, child_worker = pipe.read().split()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert ok == "True"
    assert child_worker != parent_worker
    # parent: 5 flushed + 2 pending; child: only its own 3 (not the parent's 2 again)
    assert registry.get_sample_value("jobs_total") == 10.0
    # gauges start from 0 in the child: the parent's 1 is not summed twice
    assert registry.get_sample_value("workers") == 1.0


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_fork_waits_for_the_flush_under_way(redis_backend: RedisBackend) -> None:
    """The child never starts from a flush (a connection, an import) half done by another
    thread of the parent: the fork waits for it, up to a second, then forks anyway."""
    held = threading.Event()
    release = threading.Event()
    finished: list[bool] = []

    def flush_in_progress() -> None:
        with redis_backend._flush_lock:
            held.set()
            release.wait(5)
            finished.append(True)

    holder = threading.Thread(target=flush_in_progress)
    holder.start()
    assert held.wait(5)
    threading.Timer(0.2, release.set).start()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if finished else 1)  # what the child inherited: the flush was over
    _, status = os.waitpid(pid, 0)
    holder.join(5)
    assert finished == [True]
    assert os.waitstatus_to_exitcode(status) == 0, "forked in the middle of the flush"
