"""The Redis backend: many workers (and hosts) share one Redis; totals add up exactly.

Recording stays in-process (the per-thread cells); a flusher sends the deltas
to Redis every ``flush_interval`` in one pipelined, exactly-once round trip,
and a scrape reads every worker's data in one more. While Redis is down,
deltas stay in memory (bounded by the number of series) and are retried with
backoff; recording never raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio

from .._labels import LabelSet
from .._samples import MetricFamily
from ..exceptions import BackendUnavailable
from ._buffer import DeltaBuffer
from ._flush_health import health_families
from ._flush_round import FlushRound
from ._flusher import Flusher, counted
from ._process import forget, track, worker_id
from ._protocol import MetricSpec, Series, SupportsClose
from ._redis_auth import auth_problem
from ._redis_client import (
    Connector,
    check_connection_options,
    check_credentials,
    replicas_option,
    seconds_option,
)
from ._redis_store import RedisStore
from ._threads import Reads, run_sync

__all__ = ["MultiProcessRedisBackend", "RedisBackend"]

log = logging.getLogger("apytheus")


class RedisBackend:
    """Share metrics between processes through Redis (or a Redis Cluster).

    Select it before traffic, e.g. with the environment of every worker::

        APYTHEUS_BACKEND_CLASS=apytheus.backends.redis.RedisBackend
        APYTHEUS_BACKEND_CONFIG='{"url": "redis://127.0.0.1:6379/0"}'

    Creating the backend does no I/O; the first flush connects.

    Args:
        config: ``url`` (``redis://``, ``rediss://`` for TLS) or ``host``,
            ``port``, ``db``, ``username``, ``password``, ``ssl`` and any other
            redis-py connection option; ``cluster`` (bool) for Redis Cluster;
            ``sentinels`` (``[[host, port], ...]``), ``service_name`` (and
            ``sentinel_username`` / ``sentinel_password``) for Sentinel;
            ``replicas`` (default 0): a batch counts once ``WAIT`` confirms that
            many replicas hold it (``replicas_timeout``, default 1 s);
            ``key_prefix`` (default ``"apytheus"``) to share one Redis between
            apps; ``flush_interval`` in seconds (default 1); ``heartbeat_ttl``
            in seconds after which a silent worker counts as dead for the
            ``live*`` gauge modes (default: 5 flush intervals, at least 10 s);
            ``worker_retention``: seconds before what a dead worker left is
            removed (default: 1 day). See the Multiprocess page for all of it.

    Raises:
        ValueError: a config value is invalid.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        options = dict(self.config)
        self.key_prefix = str(options.pop("key_prefix", "apytheus"))
        if not self.key_prefix or any(c in self.key_prefix for c in "{}"):
            raise ValueError("key_prefix must be a non-empty string without '{' or '}'")
        self.flush_interval = seconds_option(options, "flush_interval", 1.0)
        if not 0 < self.flush_interval <= 3600:
            raise ValueError("flush_interval must be between 0 and 3600 seconds")
        default_ttl = max(10.0, 5 * self.flush_interval)
        self.heartbeat_ttl = seconds_option(options, "heartbeat_ttl", default_ttl)
        if not self.heartbeat_ttl > self.flush_interval:
            raise ValueError("heartbeat_ttl must be longer than flush_interval")
        self.worker_retention = seconds_option(options, "worker_retention", 86400.0)
        if not self.worker_retention > 0:
            raise ValueError("worker_retention must be a positive number of seconds")
        replicas, replicas_timeout = replicas_option(options)
        check_connection_options(options)
        if "|" in self.key_prefix:
            raise ValueError("key_prefix must not contain '|' (it separates prefix and name)")
        self._identity = (self.key_prefix, repr(sorted(options.items())))
        self._options = options
        self._store = RedisStore(
            Connector(options), self.key_prefix, self.heartbeat_ttl, replicas, replicas_timeout
        )
        self._probe = Connector(options, retries=0)  # the startup check tries once
        self._buffer = DeltaBuffer(worker_id())
        self._round = FlushRound(
            self._buffer,
            self._store,
            options,
            self.key_prefix,
            self.worker_retention,
            min(self.worker_retention, max(60.0, 10 * self.flush_interval)),
        )
        # a worker backing off (Redis refuses, or its replicas lag) still writes its
        # heartbeat with each attempt: often enough to stay live for other workers
        backoff = min(30.0, self.heartbeat_ttl / 2)
        self._flusher = Flusher(self._round.run_unless_busy, self.flush_interval, backoff)
        self._reads = Reads(MAX_READS, "Redis is slow")
        self._closed = False
        track(self)

    @property
    def worker(self) -> str:
        """This process' worker id (the ``worker`` label of ``all`` gauges)."""
        return self._buffer.worker

    # -- Backend protocol ------------------------------------------------------
    def attach(self, metric: MetricSpec, series: Series) -> None:
        """Track a new series; its values reach Redis with the next flush."""
        self._buffer.track(metric, series)
        if not self._closed:
            self._flusher.ensure_thread()

    def detach(self, metric: MetricSpec, labels: LabelSet | None) -> None:
        """Forget a series here; the next flush deletes it in Redis too (every worker's)."""
        if labels is None:
            return  # a whole metric is forgotten only here: other workers may still use it
        self._buffer.remove(metric, labels)

    def collect(
        self, metrics: Sequence[MetricSpec], created: bool = True
    ) -> dict[MetricSpec, list[Series]]:
        """Flush this worker's buffer, then read every worker's series (blocking).

        The numbers are current, or not served: this worker's flush (or the one
        under way, which it joins) wrote what it had recorded, and the read came
        from the master (a replica refuses the heartbeat the read writes).

        Raises:
            BackendUnavailable: Redis cannot be reached, or this worker's data
                could not be written there (a scrape would see stale numbers).
        """
        if not self._round.sync():
            raise BackendUnavailable(
                "cannot read metrics from Redis: this worker's data could not be written "
                f"first, so its numbers would be stale ({self._round.error})"
            )
        try:
            return self._store.read(metrics, time.time(), created, self.worker)
        except Exception as exc:
            problem = auth_problem(exc, self._options)
            raise BackendUnavailable(f"cannot read metrics from Redis: {problem or exc}") from exc

    async def acollect(self, metrics: Sequence[MetricSpec]) -> dict[MetricSpec, list[Series]]:
        """`collect` in a worker thread; cancelled, it returns at once (see `Reads`)."""
        return await self._reads.run(self.collect, metrics, True)

    def collect_values(self, metrics: Sequence[MetricSpec]) -> dict[MetricSpec, list[Series]]:
        """`collect` without counters' and histograms' creation times (for the text format)."""
        return self.collect(metrics, created=False)

    async def acollect_values(self, metrics: Sequence[MetricSpec]) -> dict[MetricSpec, Any]:
        """`collect_values` in a worker thread, as `acollect`."""
        return await self._reads.run(self.collect, metrics, False)

    async def flush(self) -> None:
        """Send what was recorded since the last flush (in a worker thread)."""
        await run_sync(self.flush_sync)

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Check the connection, run the flusher as an anyio task; flush a last time on exit.

        Entering it raises `InvalidBackendConfigException` if Redis refuses the
        password or the ACL user (see `check_connection`), so the app's startup
        fails with that message instead of losing its metrics quietly.
        """
        return self._lifespan()

    # -- flushing --------------------------------------------------------------
    def flush_sync(self) -> bool:
        """Flush now (blocking). Returns False if Redis could not be reached (data kept).

        A pending (retried) batch goes first, then (same flush) one with what was
        recorded and removed meanwhile, and one more if Redis turns out to have
        lost this worker's data. Every write refreshes the heartbeat.
        """
        return self._round.run()

    def check_connection(self) -> None:
        """Connect and PING once (blocking), to catch a wrong password or ACL at startup.

        Raises:
            InvalidBackendConfigException: Redis refused the credentials, or the
                ACL user may not run PING: a config error, which no retry cures.

        An unreachable Redis is only logged: the flusher keeps the deltas and
        retries, so an outage at startup never stops the app.
        """
        check_credentials(self._probe, self._options)

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        await run_sync(self.check_connection)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._flusher.run)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await run_sync(self.flush_sync)

    def close(self, flush: bool = True) -> None:
        """Stop the flusher, flush a last time (unless told not to), disconnect.

        After that last flush, the worker removes what only it needed from Redis
        (see `FlushRound.close`): a clean stop leaves nothing behind to grow Redis or
        to count as a live worker. Later flushes and scrapes of this backend do
        nothing (they raise `BackendUnavailable`). Runs at interpreter exit for every
        backend still open.
        """
        if self._closed:
            return
        self._closed = True
        self._flusher.stop_thread()
        self._round.close(retire=flush)
        self._store.close()
        forget(self)

    # -- process lifecycle -----------------------------------------------------
    def _after_fork(self) -> None:
        """In a forked child: new worker id, locks, connection and flusher; no parent deltas."""
        self._round.reset()
        self._reads = Reads(MAX_READS, "Redis is slow")
        self._buffer.rebase(worker_id())
        self._store.reset()
        self._flusher.forget_thread()
        if self._buffer.size() and not self._closed:
            self._flusher.ensure_thread()

    def adopt(self, previous: object) -> None:
        """Take over from the backend this one replaces (called by `load_backend`).

        On the same store (same connection and key prefix) this one continues the
        previous worker: its id, its unacknowledged batch and what it had sent, so
        nothing is sent twice or lost. The previous backend is closed either way.
        """
        if isinstance(previous, RedisBackend) and previous._identity == self._identity:
            with previous._flush_lock:
                previous._flusher.stop_thread()
                self._buffer.adopt(previous._buffer.handover())
                self._store.inherit(previous._store)
                self._round.metrics.update(previous._round.metrics)
            previous.close(flush=False)
        elif isinstance(previous, SupportsClose):
            previous.close()

    # -- health ----------------------------------------------------------------
    def health_families(self) -> list[MetricFamily]:
        """This worker's flush health, exposed with the default registry."""
        return health_families(self._round)

    flush_errors = counted("flush_errors", "Flushes that failed (their deltas stayed buffered).")
    dropped_updates = counted("dropped_updates", "Updates Redis refused for good.")
    resends = counted("resends", "Times Redis had lost this worker's data, so it sent it again.")
    last_flush = counted("last_flush", "Unix time of the last successful flush (0 before any).")
    slow_flushes = counted("slow_flushes", "Flushes that took half of heartbeat_ttl or more.")

    @property
    def _flush_lock(self) -> threading.Lock:
        """Held while a flush runs."""
        return self._round.lock

    def __repr__(self) -> str:
        return f"RedisBackend(key_prefix={self.key_prefix!r}, worker={self.worker!r})"


MAX_READS = 2  # reads of Redis a worker runs at once, those its scrapes gave up on included

MultiProcessRedisBackend = RedisBackend
"""pytheus' name for the Redis backend."""
