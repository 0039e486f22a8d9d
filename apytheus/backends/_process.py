"""STORE: the process around the Redis backends: worker ids, fork, and interpreter exit.

Every open backend is known here (weakly). Before a fork, a flush under way
is given a moment to finish, so the child never starts from a connection or an
import half done by the parent's flusher thread; in the child, each backend
becomes a new worker; at exit, each flushes a last time and retires (see
`RedisBackend.close`).
"""

from __future__ import annotations

import atexit

# The first connection encodes the host name with the idna codec, which Python imports on
# first use: a fork while the flusher thread was inside that import (Celery's pool forks
# at any time) left the child stuck on the import lock. Imported here, before any thread.
import encodings.idna  # noqa: F401
import os
import socket
import threading
import weakref
from secrets import token_hex
from typing import Protocol

FORK_WAIT = 1.0  # seconds a fork waits for a flush under way, at most


class Worker(Protocol):
    """What the process hooks need of a backend."""

    @property
    def _flush_lock(self) -> threading.Lock: ...

    def _after_fork(self) -> None: ...

    def close(self, flush: bool = True) -> None: ...


_backends: weakref.WeakSet[Worker] = weakref.WeakSet()
_held: list[threading.Lock] = []  # flush locks taken before a fork, released after it


def worker_id() -> str:
    """A new worker's id: host, pid and 48 random bits (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{token_hex(6)}"


def track(backend: Worker) -> None:
    """Let the fork and exit hooks reach ``backend`` (until it is closed or collected)."""
    _backends.add(backend)


def forget(backend: Worker) -> None:
    _backends.discard(backend)


def _before_fork() -> None:
    for backend in list(_backends):
        lock = backend._flush_lock
        if lock.acquire(timeout=FORK_WAIT):  # a flush stuck on a dead Redis: fork anyway
            _held.append(lock)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop().release()


def _after_fork_in_child() -> None:
    _held.clear()  # the child's backends get new locks
    for backend in list(_backends):
        backend._after_fork()


def _at_exit() -> None:
    for backend in list(_backends):
        backend.close()  # flush_sync logs and swallows Redis errors: exit is never masked


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
atexit.register(_at_exit)
