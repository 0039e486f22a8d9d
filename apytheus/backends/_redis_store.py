"""STORE: exactly-once writes to Redis (see _redis_scripts.py), one-round-trip reads.

The layout (keys, fields) is in ``_redis_layout.py``; a read's merge over
workers is in ``_redis_merge.py``. Nothing is ever scanned (no ``KEYS`` /
``SCAN``): a read is one ``HGETALL`` per metric, all pipelined.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import redis
import redis.exceptions

from ._batch import Batch, Mark
from ._exemplars import KINDS, Attached
from ._protocol import MetricSpec, Series
from ._redis_auth import is_auth_error
from ._redis_client import (
    TRANSIENT,
    Connector,
    NotReplicated,
    close_client,
    execute,
    permanent_reason,
)
from ._redis_commands import exemplar_command, flush_command, mark_command
from ._redis_layout import (
    exemplars_key,
    marks_key,
    metric_keys,
    workers_key,
)
from ._redis_merge import Merge
from ._redis_scripts import SCRIPTS

log = logging.getLogger("apytheus")


_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class Written(NamedTuple):
    """What a write found out besides applying the batch."""

    refused: dict[str, str]
    """Metrics whose update Redis refused for good, with the reason: dropped."""
    behind: set[str]
    """Metrics whose keys held an older batch number of this worker than expected, or none."""
    confirmed: bool
    """Redis held the mark this worker expected (see MARK_SCRIPT)."""


class RedisStore:
    """Reads and writes metric data for one key prefix (blocking calls: run them in a thread).

    The client is created on first use, so creating a store does no I/O (a
    cluster client connects when it is made). With ``replicas``, a write counts
    only once ``WAIT`` confirms that many replicas hold it.
    """

    def __init__(
        self,
        connector: Connector,
        key_prefix: str,
        heartbeat_ttl: float,
        replicas: int = 0,
        replicas_timeout: float = 1.0,
    ):
        self._connector = connector
        self.replicas = replicas
        self.replicas_timeout = replicas_timeout
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.key_prefix = key_prefix
        self.heartbeat_ttl = heartbeat_ttl
        # Metrics found behind (their keys lost) by a write that then failed: the retry
        # of the same batch finds them applied, so it could not tell.
        self._behind: set[str] = set()
        self._exemplars_warned = False
        self._attached = Attached()  # the exemplars reads put on series
        self.workers_key = workers_key(key_prefix)
        self.marks_key = marks_key(key_prefix)
        # per metric, the series the last read made (see Merge), kept for the next read
        self._kept: weakref.WeakKeyDictionary[MetricSpec, dict[bytes, Series | None]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def client(self) -> Any:
        """The redis-py client (made on first use)."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._connector()
                client = self._client
        return client

    def inherit(self, previous: RedisStore) -> None:
        """Take over what a predecessor's failed write had found out (see ``_behind``)."""
        self._behind |= previous._behind

    def reset(self) -> None:
        """Forget the client without closing it (after fork: it is the parent's)."""
        self._behind = set()
        self._client = None
        self._client_lock = threading.Lock()

    def close(self) -> None:
        """Close every connection (a cluster client's per-node pools too)."""
        client, self._client = self._client, None
        if client is not None:
            close_client(client)

    def failed(self, client: Any, errors: Sequence[BaseException]) -> None:
        """What a failed round trip tells about the server: demoted, or gone.

        A server that answers ``READONLY`` became a replica (a failover): the
        connector looks for the master, and the next round trip uses a new
        client. A followed master that does not answer is given up.
        """
        if any(isinstance(e, redis.exceptions.ReadOnlyError) for e in errors):
            found = self._connector.demoted(client)
            log.warning("apytheus: Redis answered READONLY (a failover): %s", found)
        elif any(isinstance(e, _UNREACHABLE) for e in errors):
            if self._connector.followed is None:
                return
            self._connector.unreachable()
        else:
            return
        with self._client_lock:
            if self._client is client:
                self._client = None
        close_client(client)

    def keys(self, spec: MetricSpec) -> tuple[str, str, str, str]:
        """The seq, values, created and times keys of a metric."""
        return metric_keys(self.key_prefix, spec.name)

    # -- write --------------------------------------------------------------
    def write(self, batch: Batch | None, worker: str, now: float, mark: Mark) -> Written:
        """Apply ``batch``, refresh the heartbeat and check ``mark``, in one round trip.

        Returns:
            The metrics whose update Redis refused (dropped, not retried: the rest
            of the batch is applied), and what tells the buffer that Redis lost
            this worker's data (see `DeltaBuffer.ack`).

        Raises:
            redis.exceptions.RedisError: Redis is unreachable or busy; re-sending the
                same batch later is safe.
        """
        ops_list = batch.ops if batch is not None else []
        seq = batch.seq if batch is not None else 0
        client = self.client
        for attempt in (1, 2):
            pipe = client.pipeline(transaction=False)
            for ops in ops_list:
                # a cluster pipeline routes EVALSHA by its keys, but refuses .evalsha()
                pipe.execute_command(*flush_command(self.key_prefix, ops, worker, seq, now))
            # exemplars after every count, each metric's in a script of its own whose
            # reply is only logged: they never decide a batch's fate (see _exemplars.py)
            shown_ops = [o for o in ops_list if o.exemplars]
            for ops in shown_ops:
                pipe.execute_command(*exemplar_command(self.key_prefix, ops))
            expiry = time.time() + self.heartbeat_ttl  # from now: building the batch took time
            pipe.execute_command(*mark_command(self.key_prefix, ops_list, worker, expiry, mark))
            if self.replicas:
                pipe.execute_command("WAIT", self.replicas, int(self.replicas_timeout * 1000))
            results = self._round_trip(client, pipe)
            waited = results.pop() if self.replicas else None
            n = len(ops_list)
            shown_results = results[n : n + len(shown_ops)]
            op_results = results[:n]
            results = op_results + results[n + len(shown_ops) :]
            behind = {o.spec.name for o, r in zip(ops_list, op_results, strict=True) if r == 2}
            self._behind |= behind
            errors = [r for r in results if isinstance(r, Exception)]
            if attempt == 1 and any(
                isinstance(e, redis.exceptions.NoScriptError) for e in (*errors, *shown_results)
            ):
                # Redis restarted (or its scripts were flushed): load them and send the same
                # again (every script checks what it already applied)
                for script in SCRIPTS:
                    client.script_load(script)
                continue
            # Only a reason proven permanent for one metric drops its update; anything
            # else (an outage, a full Redis, a busy script, an error nobody foresaw) keeps
            # the whole batch, to be sent again: the metrics applied already skip it.
            retry = [e for e in errors if permanent_reason(e) is None]
            if retry:
                raise retry[0]
            self._exemplars_written(shown_results)
            if isinstance(results[-1], Exception):
                raise results[-1]  # the heartbeat and mark failed: nothing is confirmed
            self._check_replicated(waited)
            refused = {
                o.spec.name: permanent_reason(r) or ""
                for o, r in zip(ops_list, op_results, strict=True)
                if isinstance(r, Exception)
            }
            behind, self._behind = self._behind, set()
            return Written(refused, behind, results[-1] == 1)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _exemplars_written(self, results: list[Any]) -> None:
        """Log (once per store) that Redis refused exemplars; nothing else depends on them."""
        errors = [r for r in results if isinstance(r, Exception)]
        if errors and not self._exemplars_warned:
            self._exemplars_warned = True
            log.warning("apytheus: Redis refused exemplars (the counts went): %s", errors[0])

    def _round_trip(self, client: Any, pipe: Any) -> list[Any]:
        """Run ``pipe`` (see `execute`); tell `failed` what went wrong, if anything did."""
        try:
            results = execute(pipe)
        except redis.exceptions.RedisError as exc:
            self.failed(client, [exc])
            raise
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            self.failed(client, errors)
        return results

    def _check_replicated(self, waited: object) -> None:
        """Raise unless ``WAIT`` (its reply ``waited``) saw enough replicas hold the batch."""
        if self.replicas == 0:
            return
        if isinstance(waited, Exception):
            raise waited
        if not isinstance(waited, int) or waited < self.replicas:
            # applied, but not yet safe from a failover: the batch stays pending and is
            # sent again (applied already, it changes nothing) until WAIT says so
            raise NotReplicated(
                f"{waited} of the {self.replicas} replicas asked for confirmed the "
                f"batch within {self.replicas_timeout} s"
            )

    # -- read ---------------------------------------------------------------
    def read(
        self,
        specs: Sequence[MetricSpec],
        now: float,
        created: bool = True,
        worker: str | None = None,
    ) -> dict[MetricSpec, list[Series]]:
        """Every series of ``specs``, merged over workers, in one round trip.

        ``created=False`` leaves counters' and histograms' creation times out
        (0): one hash per metric instead of two, for the text format.

        With ``worker``, the read also refreshes that worker's heartbeat: a write,
        which a replica refuses (``READONLY``). So the numbers never come from a
        replica, which may lag or be a demoted master's stale copy.
        """
        client = self.client
        pipe = client.pipeline(transaction=False)
        if worker is not None:
            pipe.zadd(self.workers_key, {worker: now + self.heartbeat_ttl}, xx=True)
        extras: list[bool] = []
        shown: list[MetricSpec] = []  # exemplars: for the formats that have them
        for spec in specs:
            _, values, created_key, times = self.keys(spec)
            pipe.hgetall(values)
            totals = spec.kind in ("counter", "histogram", "summary")
            extras.append(created or not totals)
            if extras[-1]:
                pipe.hgetall(created_key if totals else times)
        if created:
            shown = [s for s in specs if s.kind in KINDS]
            for spec in shown:
                pipe.hgetall(exemplars_key(self.key_prefix, spec.name))
        pipe.zrangebyscore(self.workers_key, now, "+inf")
        results = self._round_trip(client, pipe)
        if worker is not None and isinstance(results[0], Exception):
            raise results[0]  # a replica (READONLY), or an outage
        results = results[1:] if worker is not None else results
        first = len(results) - 1 - len(shown)
        # an outage, or an ACL that refuses a read: no partial answer (but exemplars are
        # extras: an error there, an ACL that leaves their keys out say, shows none)
        errors = [r for r in results[:first] + results[-1:] if isinstance(r, Exception)]
        transient = [e for e in errors if isinstance(e, TRANSIENT) or is_auth_error(e)]
        if transient:
            raise transient[0]
        if isinstance(results[-1], Exception):
            raise results[-1]
        live = {w.decode() for w in results[-1]}
        stored = dict(zip(shown, results[first:-1], strict=True))
        out: dict[MetricSpec, list[Series]] = {}
        at = 0
        for spec, has_extra in zip(specs, extras, strict=True):
            values, extra = results[at], (results[at + 1] if has_extra else None)
            at += 2 if has_extra else 1
            if isinstance(values, Exception) or isinstance(extra, Exception):
                # one metric's keys are unreadable (another type): leave it out, serve the rest
                log.error("apytheus: cannot read %s from Redis: %s", spec.name, values or extra)
                out[spec] = []
                continue
            merge = Merge(spec, self._kept.get(spec, {}))
            out[spec] = merge.merge(values, extra, live)
            self._kept[spec] = merge.known
            exemplars = stored.get(spec)
            if isinstance(exemplars, dict):  # an error there (another type) shows none
                self._attached.attach(spec, merge.known, exemplars)
        return out
