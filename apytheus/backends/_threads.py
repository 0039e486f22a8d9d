"""Worker threads for the backends' blocking I/O, apart from the app's own.

anyio's default thread limiter (40 threads per event loop) is also what
Starlette and FastAPI run sync endpoints on: an app whose sync endpoints hold
every thread would hold up the flusher and the scrapes too. The backends'
I/O gets a small limiter of its own per event loop instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from ..exceptions import BackendUnavailable

T = TypeVar("T")

TOKENS = 4  # a flush at a time (it holds a lock), and a few scrapes at once

BREATHE = 64
"""Items a long loop in a worker thread handles between calls of its `Breather`."""

BREATHE_S = 0.002
"""Seconds of work after which a `Breather` gives the GIL up."""


def pause() -> None:
    """Give the GIL up for a moment (a sleep of 0: on Linux about 50-80 µs of timer slack)."""
    time.sleep(0)


class Breather:
    """Lets the event loop's thread take the GIL during a long loop in a worker thread.

    A worker thread that runs Python code keeps the GIL until the loop's thread
    has waited a whole switch interval (5 ms) and asked for it: every tick of a
    1 ms timer that falls in a batch build or a read's merge would be 5 ms
    late. Called every `BREATHE` items, it gives the GIL up (`pause`) once
    `BREATHE_S` of work went by since it last did: the loop then waits about
    2 ms at most, for about 4% more time in the worker thread.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = time.perf_counter()

    def __call__(self) -> None:
        now = time.perf_counter()
        if now - self._last >= BREATHE_S:
            pause()
            self._last = time.perf_counter()


_limiter: RunVar[anyio.CapacityLimiter] = RunVar("apytheus_io_limiter")


async def run_sync(fn: Callable[..., T], *args: object, abandon: bool = False) -> T:
    """``fn(*args)`` in a worker thread of the backends' own limiter.

    ``abandon=True``: a cancelled caller returns at once and the thread finishes
    on its own, its result dropped (for reads, which change nothing).
    """
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(TOKENS)
        _limiter.set(limiter)
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter, abandon_on_cancel=abandon)


class Reads:
    """Reads that may be abandoned (a scrape past its deadline), at most ``limit`` at once.

    An abandoned thread gives its limiter token back at once but runs on until
    the store answers: counted here until it really ends, so that scrapes
    against a hung store do not pile up threads (and load) behind it.
    """

    def __init__(self, limit: int, why: str) -> None:
        self.limit = limit
        self.why = why
        self.running = 0
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread, abandoned if cancelled.

        Raises:
            BackendUnavailable: ``limit`` reads are still running.
        """
        with self._lock:
            if self.running >= self.limit:
                raise BackendUnavailable(
                    f"{self.why}: {self.running} earlier reads have not finished yet"
                )
            self.running += 1

        def counted() -> T:
            try:
                return fn(*args)
            finally:
                with self._lock:
                    self.running -= 1

        return await run_sync(counted, abandon=True)
