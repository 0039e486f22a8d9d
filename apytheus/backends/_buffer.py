"""BUFFER: turn per-thread cumulative cells into exactly-once batches (pure data, no I/O).

Cells only grow, so the deltas since the last batch are ``total - sent``.
Taking a batch moves ``sent`` forward (all series at once, only when the whole
batch was built); the batch then stays pending until the store acknowledges
it, and is re-sent *unchanged* (same sequence number) until it is. A store that
checks the sequence number atomically therefore applies every delta exactly
once, however often the connection drops. Memory is bounded by the number of
series: the cells, one ``sent`` per series, and at most one pending batch.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import weakref
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from .._labels import LabelSet
from .._samples import floatstr
from ._protocol import MetricSpec, Series
from ._series import HistogramSeries, InfoSeries, ScalarSeries

log = logging.getLogger("apytheus")

SEP = "\t"  # between a series' field and its part (bucket, sum, worker): JSON never has a raw tab


def series_field(labels: LabelSet) -> str:
    """The hash field naming a series: its label values as compact JSON, in declared order."""
    return json.dumps([v for _, v in labels.pairs], ensure_ascii=False, separators=(",", ":"))


def bucket_parts(bounds: tuple[float, ...]) -> list[str]:
    """Field suffixes of a histogram's buckets (``le`` as exposed), then ``sum``."""
    return [floatstr(b) for b in bounds] + ["+Inf", "sum"]


@dataclass
class MetricOps:
    """What one batch does to one metric's hashes (metrics of one name share them)."""

    spec: MetricSpec
    incr: list[tuple[str, float]] = field(default_factory=list)  # field, delta to add
    sets: list[tuple[str, str]] = field(default_factory=list)  # HSET field value
    stamped: list[str] = field(default_factory=list)  # fields of `sets` whose time to record
    created: list[tuple[str, float]] = field(default_factory=list)  # HSETNX field timestamp

    def __bool__(self) -> bool:
        return bool(self.incr or self.sets or self.created)


@dataclass
class Batch:
    """One flush: a sequence number and the operations, sent as a whole until acknowledged."""

    seq: int
    ops: list[MetricOps]

    @property
    def fields(self) -> int:
        """How many hash fields the batch writes."""
        return sum(len(o.incr) + len(o.sets) for o in self.ops)


@dataclass
class _Entry:
    series: Series
    field: str
    sent: Any = None  # what the store has: a total, bucket totals, a value or info pairs
    recreate: bool = False  # the store lost this total: write the series (and _created) again


_TOTALS = ("counter", "histogram", "summary")  # kinds sent as deltas of totals


class DeltaBuffer:
    """The series of one worker and what of them has been sent (thread-safe)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.seq = _first_seq()
        self.pending: Batch | None = None
        # Reentrant: a gauge's set_function, called while a batch is built, may create series.
        self._lock = threading.RLock()
        self._tracked: weakref.WeakKeyDictionary[MetricSpec, dict[LabelSet, _Entry]] = (
            weakref.WeakKeyDictionary()
        )
        self._handed: dict[tuple[str, str], Any] = {}  # baselines from a predecessor
        self._stored: set[str] = set()  # metrics the store acknowledged a batch of
        self._known = False  # the store has listed this worker since its first write

    def track(self, spec: MetricSpec, series: Series) -> None:
        """Start sending ``series``; what the store does not have yet goes with the next batch."""
        with self._lock:
            field = series_field(series.labels)
            entry = _Entry(series, field, self._handed.pop((spec.name, field), None))
            self._tracked.setdefault(spec, {})[series.labels] = entry

    def untrack(self, spec: MetricSpec, labels: LabelSet | None) -> None:
        """Stop sending one series, or all of ``spec``."""
        with self._lock:
            entries = self._tracked.get(spec)
            if entries is not None:
                if labels is None:
                    entries.clear()
                else:
                    entries.pop(labels, None)

    def specs(self) -> list[MetricSpec]:
        """The metrics with tracked series."""
        with self._lock:
            return list(self._tracked)

    def size(self) -> int:
        """How many series are tracked."""
        with self._lock:
            return sum(len(e) for e in self._tracked.values())

    def handover(self) -> tuple[str, int, Batch | None, dict[tuple[str, str], Any]]:
        """Everything a successor on the same store needs to go on exactly once."""
        with self._lock:
            sent = {
                (spec.name, e.field): e.sent
                for spec, entries in self._tracked.items()
                for e in entries.values()
                if e.sent is not None
            }
            return self.worker, self.seq, self.pending, sent

    def adopt(self, state: tuple[str, int, Batch | None, dict[tuple[str, str], Any]]) -> None:
        """Continue a predecessor's worker: its pending batch and what it had sent."""
        with self._lock:
            self.worker, self.seq, self.pending, self._handed = state

    def take(self, now: float) -> Batch | None:
        """The batch to send: the pending one, else a new one (None when nothing changed)."""
        with self._lock:
            if self.pending is not None:
                return self.pending
            by_name: dict[str, MetricOps] = {}
            commits: list[tuple[_Entry, Any]] = []
            for spec, entries in list(self._tracked.items()):
                # Metrics of one name (two registries, say) share keys: one script call each.
                ops = by_name.setdefault(spec.name, MetricOps(spec))
                for entry in list(entries.values()):
                    try:
                        self._add_ops(ops, spec, entry, commits, now)
                    except Exception:  # noqa: PERF203 - a set_function that raises: skip it, send the rest
                        log.exception(
                            "apytheus: cannot read series %s of %s", entry.field, spec.name
                        )
            ops_list = [o for o in by_name.values() if o]
            for entry, sent in commits:  # only now that the whole batch exists
                entry.sent = sent
                entry.recreate = False
            if not ops_list:
                return None
            self.seq += 1
            self.pending = Batch(self.seq, ops_list)
            return self.pending

    def ack(
        self, batch: Batch | None, fresh: AbstractSet[str] = frozenset(), new_worker: bool = False
    ) -> bool:
        """The store applied ``batch``: the next take builds a new one.

        ``fresh`` are the batch's metrics in which the store had no batch number
        of this worker; ``new_worker``, whether it did not list this worker. Either
        one after an earlier acknowledgement means the store lost what this worker
        sent (Redis restarted empty, or pruned a worker it thought dead). Counters
        and histograms then go on from their new deltas (a normal counter reset)
        and write their series and ``_created`` again; gauges, infos and enums
        send their state again, which the store would otherwise lack until it
        changes. Returns whether that happened (the next batch holds it).
        """
        with self._lock:
            if batch is not None and self.pending is batch:
                self.pending = None
            lost = None if new_worker and self._known else fresh & self._stored
            self._known = True
            if batch is not None:
                self._stored.update(o.spec.name for o in batch.ops)
            if lost is None or lost:
                self._resend(lost)
                return True
            return False

    def _resend(self, names: AbstractSet[str] | None) -> None:
        """Send the state of every series of ``names`` (None: all) again."""
        # the store has no batch number of these any more: no loss when it says so again
        self._stored = set() if names is None else self._stored - names
        for spec, entries in self._tracked.items():
            if names is None or spec.name in names:
                for entry in entries.values():
                    if spec.kind in _TOTALS:
                        entry.recreate = True
                    else:
                        entry.sent = None

    def rebase(self, worker: str) -> None:
        """After fork: a new worker that never re-sends what its parent recorded.

        Counters and histograms keep their totals but count only what the child
        adds. Gauges start again from 0, as a new process' would (otherwise a
        value set before the fork would be summed once per worker); info and
        enum keep their state, which is the same in every worker.
        """
        self._lock = threading.RLock()  # the parent's may have been held by another thread
        self.worker = worker
        self.seq = _first_seq()
        self.pending = None
        self._stored = set()
        self._known = False
        for spec, entries in self._tracked.items():
            for entry in entries.values():
                entry.sent = None
                entry.recreate = False
                series = entry.series
                if spec.kind in _TOTALS:
                    entry.sent = _totals(series)
                elif spec.kind == "gauge" and isinstance(series, ScalarSeries):
                    series.cells = {}

    def _add_ops(
        self,
        ops: MetricOps,
        spec: MetricSpec,
        entry: _Entry,
        commits: list[tuple[_Entry, Any]],
        now: float,
    ) -> None:
        kind = spec.kind
        series = entry.series
        new = entry.sent is None or entry.recreate  # the store does not have this series
        if kind == "counter":
            total = _totals(series)
            _delta(ops, entry.field, total, entry.sent or 0.0, new)
            commits.append((entry, total))
        elif kind in ("histogram", "summary"):
            totals = _totals(series)
            before = entry.sent or [0.0] * len(totals)
            parts = bucket_parts(spec.bounds)
            for i, (now_v, was) in enumerate(zip(totals, before, strict=True)):
                # a new series writes its +Inf bucket, so that it exists with zeros
                _delta(ops, entry.field + SEP + parts[i], now_v, was, new and i == len(totals) - 2)
            commits.append((entry, totals))
        else:
            value = _state(series)
            if value != entry.sent:
                key = entry.field + SEP + self.worker
                ops.sets.append((key, value))
                if _touched(series):  # an untouched gauge never wins `mostrecent`
                    ops.stamped.append(key)
                commits.append((entry, value))
        if new and kind in _TOTALS:
            # a series the store lost starts again from 0 now (as after a restart)
            ops.created.append((entry.field, now if entry.recreate else series.created))


def _first_seq() -> int:
    """Batch numbers grow across a worker id's lifetimes (microseconds: exact in a double)."""
    return int(time.time() * 1_000_000)


def _delta(ops: MetricOps, key: str, now: float, was: float, force: bool) -> None:
    if math.isfinite(now):
        delta = now - was
        if delta or force:
            ops.incr.append((key, delta))
    elif not (now == was or (now != now and was != was)):
        # an infinite or NaN total: store it as it is (+Inf, -Inf or NaN), not as a delta
        ops.sets.append((key, floatstr(now)))


def _totals(series: Series) -> Any:
    if isinstance(series, ScalarSeries):
        return float(sum(series.cells.copy().values()))
    if isinstance(series, HistogramSeries):
        counts, total = series.snapshot()
        return [float(c) for c in counts] + [total]
    raise TypeError(f"{series!r} has no totals")


def _touched(series: Series) -> bool:
    """Whether a gauge-like series was ever written (its 0 is then a real value)."""
    if isinstance(series, InfoSeries):
        return bool(series.info)
    assert isinstance(series, ScalarSeries)
    return bool(series.cells) or series.function is not None


def _state(series: Series) -> str:
    """A gauge-like series' value as stored (one field per worker)."""
    if isinstance(series, InfoSeries):
        return json.dumps(dict(series.info), ensure_ascii=False, separators=(",", ":"))
    assert isinstance(series, ScalarSeries)
    return floatstr(series.value())
