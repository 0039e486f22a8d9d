"""FLUSH: when to flush: every interval, with backoff while the store fails.

`Flusher` calls a flush (a `FlushRound`, see ``_flush_round.py``) every
interval, as an anyio task or a fallback thread.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import anyio

from ._threads import run_sync

log = logging.getLogger("apytheus")


class Flusher:
    """Runs ``flush_once`` (blocking; returns success) every ``interval`` seconds.

    After failures the delay doubles up to ``max_backoff`` (with jitter, so
    workers that lost Redis together do not come back in lockstep). One
    ``Flusher`` serves both the async task and the fallback thread; while an
    async task runs, the thread stays idle.
    """

    def __init__(
        self, flush_once: Callable[[], bool], interval: float, max_backoff: float = 30.0
    ) -> None:
        self.flush_once = flush_once
        self.interval = interval
        self.max_backoff = max(max_backoff, interval)
        self.failures = 0
        self.tasks = 0  # async flusher tasks running now
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._thread_lock = threading.Lock()

    def delay(self) -> float:
        """Seconds until the next flush."""
        if not self.failures:
            return self.interval
        backoff = min(self.interval * 2.0 ** min(self.failures, 30), self.max_backoff)
        return backoff * random.uniform(0.5, 1.0)

    def _once(self) -> None:
        try:
            ok = self.flush_once()
        except Exception:  # never let the flusher die (or take the app's task group down)
            log.exception("apytheus: flush raised")
            ok = False
        self.failures = 0 if ok else self.failures + 1

    async def run(self) -> None:
        """Flush forever (until cancelled); the I/O runs in a worker thread."""
        self.tasks += 1
        try:
            while True:
                await anyio.sleep(self.delay())
                await run_sync(self._once)
        finally:
            self.tasks -= 1

    def ensure_thread(self) -> None:
        """Start the fallback thread (for programs without a lifespan) if not running."""
        with self._thread_lock:
            thread = self._thread
            if thread is not None and thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._loop, args=(self._stop,), name="apytheus-flusher", daemon=True
            )
            self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.delay()):
            if not self.tasks:
                self._once()

    def stop_thread(self, timeout: float = 5.0) -> None:
        """Stop the fallback thread (it finishes a flush in progress)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def forget_thread(self) -> None:
        """After fork: the parent's thread does not exist in the child."""
        self._thread = None
        self._stop = threading.Event()
        self._thread_lock = threading.Lock()
        self.tasks = 0
        self.failures = 0


def counted(name: str, doc: str) -> Any:
    """A read-only property, for a backend, of what its flush round (``_round``) counts."""
    return property(lambda self: getattr(self._round, name), doc=doc)
