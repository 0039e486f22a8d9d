"""STORE: the Redis layout, the exactly-once writes (see _redis_scripts.py), one-round-trip reads.

Keys carry a hash tag per metric (``{prefix|name}:v``), so everything a flush
script touches lives in one Redis Cluster slot (``|`` is in no metric name, so
prefixes and names cannot run into each other):

* ``{p|m}:v``   values. Counter / histogram fields hold totals over all
  workers (added in the flush script); gauge, info and enum fields are per worker.
* ``{p|m}:seq`` the last batch sequence number applied, per worker.
* ``{p|m}:c``   creation time per series (``HSETNX``), for OpenMetrics.
* ``{p|m}:t``   time of the last write per gauge field (``mostrecent``).
* ``{p}:workers`` a sorted set of workers; the score is when each one's
  heartbeat expires, as the worker itself set it.
* ``{p}:marks``  per worker, the batch number of its last confirmed write:
  how a worker notices that Redis lost (or rolled back) what it sent.

Nothing is ever scanned (no ``KEYS``/``SCAN``): a read is one ``HGETALL`` per
metric, all pipelined.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import redis
import redis.exceptions

from .._labels import LabelSet
from ._buffer import SEP, Batch, Mark, bucket_parts
from ._protocol import MetricSpec, Series
from ._redis_client import TRANSIENT, close_client, is_auth_error
from ._redis_scripts import FLUSH_SHA, MARK_SHA, PRUNE_SCRIPT, PRUNE_SHA, SCRIPTS
from ._series import HistogramSeries, InfoSeries, ScalarSeries

log = logging.getLogger("apytheus")

_LIVE = {"livesum", "livemax", "livemin", "livemostrecent", "liveall"}


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
    cluster client connects when it is made).
    """

    def __init__(self, make_client: Callable[[], Any], key_prefix: str, heartbeat_ttl: float):
        self._make_client = make_client
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.key_prefix = key_prefix
        self.heartbeat_ttl = heartbeat_ttl
        # Metrics found behind (their keys lost) by a write that then failed: the retry
        # of the same batch finds them applied, so it could not tell.
        self._behind: set[str] = set()
        self.workers_key = f"{{{key_prefix}}}:workers"
        self.marks_key = f"{{{key_prefix}}}:marks"
        # field -> LabelSet per metric, rebuilt by every read (so it never outgrows Redis)
        self._labels: weakref.WeakKeyDictionary[MetricSpec, dict[str, LabelSet | None]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def client(self) -> Any:
        """The redis-py client (made on first use)."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
                client = self._client
        return client

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

    def keys(self, spec: MetricSpec) -> tuple[str, str, str, str]:
        """The seq, values, created and times keys of a metric."""
        tag = f"{{{self.key_prefix}|{spec.name}}}"
        return f"{tag}:seq", f"{tag}:v", f"{tag}:c", f"{tag}:t"

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
                expected = "" if ops.expected is None else str(ops.expected)
                by_name = "1" if ops.spec.kind == "counter" else "0"  # see FLUSH_SCRIPT
                args: list[Any] = [worker, seq, expected, len(ops.deletes), len(ops.incr)]
                args += [len(ops.sets), len(ops.stamped), len(ops.created), by_name, repr(now)]
                args += ops.deletes
                for f, d in ops.incr:
                    args += (f, repr(d))
                for f, v in ops.sets:
                    args += (f, v)
                for f, t in (*ops.stamped, *ops.created):
                    args += (f, repr(t))
                # a cluster pipeline routes EVALSHA by its keys, but refuses .evalsha()
                pipe.execute_command("EVALSHA", FLUSH_SHA, 4, *self.keys(ops.spec), *args)
            expected_mark = "" if mark.expected is None else str(mark.expected)
            expiry = repr(now + self.heartbeat_ttl)
            force = "1" if mark.force else "0"
            keys = (self.workers_key, self.marks_key)
            mark_args = (worker, expiry, expected_mark, str(mark.new), force)
            pipe.execute_command("EVALSHA", MARK_SHA, 2, *keys, *mark_args)
            results = _execute(pipe)
            op_results = results[: len(ops_list)]
            behind = {o.spec.name for o, r in zip(ops_list, op_results, strict=True) if r == 2}
            self._behind |= behind
            errors = [r for r in results if isinstance(r, Exception)]
            if not errors:
                behind, self._behind = self._behind, set()
                return Written({}, behind, results[-1] == 1)
            if attempt == 1 and any(isinstance(e, redis.exceptions.NoScriptError) for e in errors):
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
            if isinstance(results[-1], Exception):
                raise results[-1]  # the heartbeat and mark failed: nothing is confirmed
            refused = {
                o.spec.name: permanent_reason(r) or ""
                for o, r in zip(ops_list, op_results, strict=True)
                if isinstance(r, Exception)
            }
            behind, self._behind = self._behind, set()
            return Written(refused, behind, results[-1] == 1)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def prune(self, specs: Sequence[MetricSpec], before: float, retry: bool = True) -> list[str]:
        """Remove what workers whose heartbeat expired before ``before`` left behind.

        Their batch numbers and gauge values go from every metric in ``specs``,
        then the workers themselves. Returns the workers removed.
        """
        client = self.client
        gone = [w.decode() for w in client.zrangebyscore(self.workers_key, "-inf", before)]
        if not gone:
            return []
        pipe = client.pipeline(transaction=False)
        for spec in {s.name: s for s in specs}.values():
            seq, values, _, times = self.keys(spec)
            pipe.execute_command("EVALSHA", PRUNE_SHA, 3, seq, values, times, *gone)
        pipe.zrem(self.workers_key, *gone)
        pipe.hdel(self.marks_key, *gone)
        results = _execute(pipe)
        if retry and any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
            client.script_load(PRUNE_SCRIPT)
            return self.prune(specs, before, retry=False)
        refused = [r for r in results if isinstance(r, Exception) and is_auth_error(r)]
        if refused:
            raise refused[0]  # the ACL does not allow pruning: say so
        return gone

    # -- read ---------------------------------------------------------------
    def read(self, specs: Sequence[MetricSpec], now: float) -> dict[MetricSpec, list[Series]]:
        """Every series of ``specs``, merged over workers, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for spec in specs:
            _, values, created, times = self.keys(spec)
            pipe.hgetall(values)
            pipe.hgetall(created if spec.kind in ("counter", "histogram", "summary") else times)
        pipe.zrangebyscore(self.workers_key, now, "+inf")
        results = _execute(pipe)
        # an outage, or an ACL that refuses a read: no partial answer
        errors = [r for r in results if isinstance(r, Exception)]
        transient = [e for e in errors if isinstance(e, TRANSIENT) or is_auth_error(e)]
        if transient:
            raise transient[0]
        if isinstance(results[-1], Exception):
            raise results[-1]
        live = {w.decode() for w in results[-1]}
        out: dict[MetricSpec, list[Series]] = {}
        for i, spec in enumerate(specs):
            values, extra = results[2 * i], results[2 * i + 1]
            if isinstance(values, Exception) or isinstance(extra, Exception):
                # one metric's keys are unreadable (another type): leave it out, serve the rest
                log.error("apytheus: cannot read %s from Redis: %s", spec.name, values or extra)
                out[spec] = []
                continue
            known = self._labels.get(spec, {})
            fresh: dict[str, LabelSet | None] = {}
            out[spec] = _Merge(spec, known, fresh).merge(values, extra, live)
            self._labels[spec] = fresh
        return out


class _Merge:
    """Turns one metric's hashes into series (fields -> labels via a per-read cache)."""

    def __init__(
        self,
        spec: MetricSpec,
        known: dict[str, LabelSet | None],
        fresh: dict[str, LabelSet | None],
    ) -> None:
        self.spec = spec
        self.known = known
        self.fresh = fresh

    def labels(self, field: str) -> LabelSet | None:
        """The labels a field names, or None if they do not fit this metric's label names.

        They do not fit when another metric of the same name but other labels
        (another registry, an older deployment) writes under the same key prefix.
        """
        if field in self.fresh:
            return self.fresh[field]
        found = self.known[field] if field in self.known else self._parse(field)
        self.fresh[field] = found
        return found

    def _parse(self, field: str) -> LabelSet | None:
        try:
            values = json.loads(field)
        except ValueError:
            return None
        names = self.spec.label_names
        if not isinstance(values, list) or len(values) != len(names):
            return None
        return LabelSet(tuple(zip(names, map(str, values), strict=True)))

    def merge(
        self, values: dict[bytes, bytes], extra: dict[bytes, bytes], live: set[str]
    ) -> list[Series]:
        kind = self.spec.kind
        if kind == "counter":
            out: list[Series] = []
            for f, v in values.items():
                labels = self.labels(f.decode())
                if labels is not None:
                    out.append(_scalar(labels, float(v), _created(extra, f)))
            return out
        if kind in ("histogram", "summary"):
            return self._histograms(values, extra)
        return self._gauges(values, extra, live)

    def _histograms(self, values: dict[bytes, bytes], created: dict[bytes, bytes]) -> list[Series]:
        spec = self.spec
        index = {p: i for i, p in enumerate(bucket_parts(spec.bounds))}
        cells: dict[str, list[float]] = {}
        width = len(index)
        for f, v in values.items():
            field, _, part = f.decode().rpartition(SEP)
            i = index.get(part)
            if i is None:
                continue  # a bucket bound this process does not declare (config changed)
            cells.setdefault(field, [0.0] * width)[i] = float(v)
        out: list[Series] = []
        for field, cell in cells.items():
            labels = self.labels(field)
            if labels is None:
                continue
            series = HistogramSeries(labels, spec.bounds)
            series.cells[0] = cell
            series.created = _created(created, field.encode())
            out.append(series)
        return out

    def _gauges(
        self, values: dict[bytes, bytes], times: dict[bytes, bytes], live: set[str]
    ) -> list[Series]:
        spec = self.spec
        mode = spec.mode if spec.kind == "gauge" else "mostrecent"
        by_series: dict[str, list[tuple[str, bytes, float]]] = {}
        for f, v in values.items():
            field, _, worker = f.decode().rpartition(SEP)
            if mode in _LIVE and worker not in live:
                continue
            by_series.setdefault(field, []).append((worker, v, float(times.get(f, b"0"))))
        out: list[Series] = []
        for field, entries in by_series.items():
            labels = self.labels(field)
            if labels is None:
                continue
            if spec.kind == "info":
                info = InfoSeries(labels)
                info.info = tuple(json.loads(max(entries, key=lambda e: e[2])[1]).items())
                out.append(info)
            elif mode in ("all", "liveall"):
                for worker, v, _ in sorted(entries):
                    out.append(_scalar(LabelSet((*labels.pairs, ("worker", worker))), float(v), 0))
            else:
                out.append(_scalar(labels, _combine(mode, entries), 0.0))
        return out


def _execute(pipe: Any) -> list[Any]:
    """Run a pipeline; an error is returned in place of its command's reply.

    The errors lose their tracebacks: a traceback holds the frames that made
    the batch, which hold the errors, and that cycle would keep every metric
    of the batch alive until the cyclic garbage collector runs.
    """
    results: list[Any] = pipe.execute(raise_on_error=False)
    for result in results:
        if isinstance(result, BaseException):
            result.__traceback__ = None
    return results


# The errors that retrying cannot cure, for one metric's keys: what they mean.
_PERMANENT = {
    "WRONGTYPE": "a key of another type under the key prefix",
    "holds no number": "a field that holds no number",  # FLUSH_SCRIPT's own error
}


def permanent_reason(error: object) -> str | None:
    """Why ``error`` (a script's reply) can never succeed for its metric, or None.

    Only a key of another type, or a field that holds no number, is proven
    permanent; every other error (``OOM``, ``BUSY``, ``READONLY``, a lost
    connection, one nobody foresaw) may pass, so its batch is sent again.
    """
    if not isinstance(error, redis.exceptions.ResponseError) or is_auth_error(error):
        return None
    if isinstance(error, TRANSIENT):
        return None
    text = str(error)
    for marker, reason in _PERMANENT.items():
        if marker in text:
            return reason
    return None


def _combine(mode: str, entries: list[tuple[str, bytes, float]]) -> float:
    if mode in ("mostrecent", "livemostrecent"):
        return float(max(entries, key=lambda e: e[2])[1])
    numbers = [float(v) for _, v, _ in entries]
    if mode in ("max", "livemax"):
        return max(numbers)
    if mode in ("min", "livemin"):
        return min(numbers)
    return sum(numbers)


def _scalar(labels: LabelSet, value: float, created: float) -> ScalarSeries:
    series = ScalarSeries(labels)
    series.cells[0] = value
    series.created = created
    return series


def _created(created: dict[bytes, bytes], field: bytes) -> float:
    raw = created.get(field)
    return float(raw) if raw is not None else 0.0
