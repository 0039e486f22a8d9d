"""FLUSH: one flush of a worker's buffer to the store, and what the flushes went through.

`Flusher` (``_flusher.py``) decides when; a `FlushRound` sends the batches,
joins a flush under way for a scrape, and counts failures, resends and
dropped updates for the health metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from ._batch import Batch
from ._buffer import DeltaBuffer
from ._redis_auth import auth_problem
from ._redis_client import NotReplicated
from ._redis_commands import newest_stays
from ._redis_retire import prune_dead, retire_worker
from ._redis_store import RedisStore

log = logging.getLogger("apytheus")

# Seconds a cleanly stopped worker's batch numbers stay in Redis (at most worker_retention):
# a copy of one of its batches that a stalled connection delivers late must find it applied.
RETIRE_GRACE = 120.0


class FlushRound:
    """One flush of a worker's buffer to the store, and what the flushes went through.

    A pending (retried) batch goes first, then (same flush) one with what was
    recorded and removed meanwhile, and one more if the store turns out to have
    lost this worker's data. Every write refreshes the heartbeat. Counts the
    failures, resends and dropped updates that `health_families` exposes.

    Args:
        buffer: the worker's `DeltaBuffer`.
        store: where batches go (a `RedisStore`).
        options: the connection options, to explain an authentication failure.
        key_prefix: named in the logs.
        worker_retention: seconds after which a dead worker's data is pruned.
        prune_every: seconds between two looks for dead workers.
    """

    def __init__(
        self,
        buffer: DeltaBuffer,
        store: RedisStore,
        options: Mapping[str, Any],
        key_prefix: str,
        worker_retention: float,
        prune_every: float,
    ) -> None:
        self.buffer = buffer
        self.store = store
        self.options = options
        self.key_prefix = key_prefix
        self.worker_retention = worker_retention
        self.prune_every = prune_every
        self.lock = threading.Lock()
        self.closed = False  # flushes are no-ops: the backend was closed
        self.metrics: dict[str, bool] = {}  # every metric this worker wrote: newest_stays
        self.reset()

    def reset(self) -> None:
        """Forget the counts (a new process after fork) and the lock's holder."""
        self.lock = threading.Lock()
        self.flush_errors = 0
        self.metrics = {}  # a new worker (after fork) has written nothing yet
        self.dropped_updates = 0
        self.dropped_by_reason: dict[str, int] = {}
        self.resends = 0  # times the store had lost (or rolled back) this worker's data
        self.last_flush = 0.0
        self.last_logged = 0.0
        self.auth_logged = False  # an auth/ACL failure was logged since the last success
        self.last_prune = time.time()
        self.finished = 0  # flushes finished so far
        self.written = False  # the last flush wrote all this worker had (WAIT aside)
        self.error = ""  # why the last flush failed
        self.duration = 0.0  # seconds the last flush took
        self.slow_flushes = 0  # flushes that took half the heartbeat's validity or more
        self.slow_logged = 0.0

    def run(self) -> bool:
        """Flush now (blocking). Returns False if the store could not be reached (data kept)."""
        with self.lock:
            return self._timed()

    def run_unless_busy(self) -> bool:
        """`run`, unless a flush is under way (a scrape's): that one does the work.

        Returns whether the last flush succeeded (for the backoff).
        """
        if not self.lock.acquire(blocking=False):
            return not self.error
        try:
            return self._timed()
        finally:
            self.lock.release()

    def sync(self) -> bool:
        """For a scrape: make the store hold what this worker recorded. Returns `written`.

        A flush under way is joined, not queued behind: once it ends, another
        runs only if something was recorded or removed since it began.
        """
        finished = self.finished
        with self.lock:
            if self.finished != finished and self.written and not self.buffer.dirty():
                return True
            self._timed()
            return self.written

    def _timed(self) -> bool:
        start = time.monotonic()
        try:
            return self._run()
        finally:
            self.duration = time.monotonic() - start
            self.finished += 1
            if self.duration >= self.store.heartbeat_ttl / 2:
                self._slow()

    def _slow(self) -> None:
        """A flush took half the heartbeat's validity or more: say so (once a minute)."""
        self.slow_flushes += 1
        now = time.monotonic()
        if now - self.slow_logged > 60:
            self.slow_logged = now
            log.warning(
                "apytheus: a flush to Redis took %.1f s (heartbeat_ttl %.1f s): Redis is slow; "
                "if flushes take longer than heartbeat_ttl, other workers' live* gauges stop "
                "counting this one (apytheus_redis_slow_flushes_total counts these flushes)",
                self.duration,
                self.store.heartbeat_ttl,
            )

    def close(self, retire: bool) -> None:
        """Flush a last time and retire this worker (if ``retire``); later flushes do nothing.

        It retires (see `retire_worker`) only if that flush left nothing pending:
        a batch that may still be sent again needs what retiring removes. Its batch
        numbers are pruned a little later, once no late copy of a batch can arrive.
        """
        with self.lock:
            if retire and self._timed() and self.buffer.pending is None:
                grace = min(RETIRE_GRACE, self.worker_retention)
                later = time.time() + grace - self.worker_retention  # not live, pruned later
                try:
                    retire_worker(self.store, self.buffer.worker, self.metrics, later)
                except Exception as exc:
                    log.warning(
                        "apytheus: could not remove what worker %s left in Redis (%s); "
                        "other workers prune it after worker_retention",
                        self.buffer.worker,
                        auth_problem(exc, self.options) or exc,
                    )
            self.closed = True

    def _run(self) -> bool:
        if self.closed:
            self.error, self.written = "the backend is closed", False
            return False
        now = time.time()
        fresh = False  # the batch being written holds the newest of what was recorded
        try:
            rounds, resent, wrote = (2 if self.buffer.pending is not None else 1), False, False
            while rounds:
                rounds -= 1
                fresh = self.buffer.pending is None
                batch = self.buffer.take(now)
                if batch is None and wrote:
                    break  # the heartbeat and the mark went with the last write
                mark = self.buffer.mark(batch)
                worker = self.buffer.worker
                written = self.store.write(batch, worker, now, mark)
                wrote = True
                for ops in batch.ops if batch is not None else ():
                    self.metrics[ops.spec.name] = newest_stays(ops.spec)
                if written.refused:
                    self._refused(written.refused, batch)
                lost = self.buffer.ack(batch, mark, written.confirmed, written.behind)
                if lost and not resent:
                    rounds, resent = 1, True
                    self.resends += 1
                    log.warning(
                        "apytheus: Redis lost (or rolled back) what worker %s had sent: "
                        "sending its series again",
                        worker,
                    )
        except Exception as exc:
            self.flush_errors += 1
            # a new batch the master holds and its replicas may not yet: written
            self.written = fresh and isinstance(exc, NotReplicated)
            problem = auth_problem(exc, self.options)
            self.error = problem or str(exc) or type(exc).__name__
            if problem is not None and (not self.auth_logged or now - self.last_logged > 60):
                # not an outage: nothing reaches Redis until the config is fixed
                self.auth_logged = True
                self.last_logged = now
                log.error(
                    "apytheus: flush to Redis failed (%d failures so far): %s. "
                    "The deltas stay buffered and are retried",
                    self.flush_errors,
                    problem,
                )
            elif now - self.last_logged > 60:
                self.last_logged = now
                log.warning(
                    "apytheus: flush to Redis failed (%d failures so far): %s; "
                    "the deltas stay buffered and are retried",
                    self.flush_errors,
                    exc,
                )
            return False
        self.last_flush = now
        self.written, self.error = True, ""
        self.auth_logged = False
        if now - self.last_prune >= self.prune_every:
            self.prune(now)
        return True

    def prune(self, now: float) -> None:
        """Remove what workers dead for longer than ``worker_retention`` left (best effort)."""
        self.last_prune = now
        try:
            gone = prune_dead(self.store, now - self.worker_retention)
        except Exception as exc:  # pruning can wait for the next time
            problem = auth_problem(exc, self.options)
            log.log(
                logging.ERROR if problem else logging.WARNING,
                "apytheus: pruning dead workers in Redis failed: %s",
                problem or exc,
            )
            return
        if gone:
            log.info("apytheus: removed %d dead workers' data from Redis", len(gone))

    def _refused(self, refused: dict[str, str], batch: Batch | None) -> None:
        """Redis refused some metrics' updates for good (not an outage): drop them, say why."""
        for reason in sorted(set(refused.values())):
            names = sorted(n for n, r in refused.items() if r == reason)
            dropped = (
                sum(len(o.incr) + len(o.sets) for o in batch.ops if o.spec.name in names)
                if batch
                else 0
            )
            self.dropped_updates += dropped
            self.dropped_by_reason[reason] = self.dropped_by_reason.get(reason, 0) + dropped
            log.error(
                "apytheus: Redis refused the updates of %s for good: %s (key_prefix %r); "
                "%d updates dropped",
                names,
                reason,
                self.key_prefix,
                dropped,
            )
