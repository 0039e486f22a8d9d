"""BUFFER: turn per-thread cumulative cells into exactly-once batches (pure data, no I/O).

Cells only grow, so the deltas since the last batch are ``total - sent``.
Taking a batch moves ``sent`` forward (all series at once, only when the whole
batch was built); the batch then stays pending until the store acknowledges
it, and is re-sent *unchanged* (same sequence number) until it is. A store that
checks the sequence number atomically therefore applies every delta exactly
once, however often the connection drops. Memory is bounded by the number of
series: the cells, one ``sent`` per series, and at most one pending batch.

Removals travel in the batches too, ahead of the batch's own updates: a series
removed and made again between two batches is deleted, then written anew, in
that order and exactly once.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from .._labels import LabelSet
from .._samples import floatstr
from ._batch import Batch, Handover, Mark, MetricOps
from ._exemplars import KINDS, to_send
from ._protocol import MetricSpec, Series
from ._redis_layout import SEP, bucket_parts, native_part, series_field
from ._series import HistogramSeries, InfoSeries, ScalarSeries, total
from ._threads import BREATHE, Breather

log = logging.getLogger("apytheus")


@dataclass(slots=True)
class _Entry:
    """What the buffer knows of a series sent as totals (a counter, histogram or summary)."""

    series: Series  # its hash field is made when needed (kept, it would cost ~70 B)
    sent: Any = None  # what the store has: a total, bucket totals, a value or info pairs
    recreate: bool = False  # the store lost this series: write it again
    shown: Any = None  # the exemplars last sent (see _exemplars.to_send)

    @property
    def state(self) -> tuple[Any, float, object, bool]:
        """What a successor needs: sent, stamp, seen, recreate."""
        return self.sent, 0.0, None, self.recreate


@dataclass(slots=True)
class _Latest(_Entry):
    """A gauge-like series' entry (sent as a value): also when, and which write, it sent."""

    stamp: float = 0.0  # when a gauge-like value was sent (its `mostrecent` time)
    seen: object = None  # the cells (or info) last sent: a new object means a new write

    @property
    def state(self) -> tuple[Any, float, object, bool]:
        """What a successor needs: sent, stamp, seen, recreate."""
        return self.sent, self.stamp, self.seen, self.recreate


_TOTALS = ("counter", "histogram", "summary")  # kinds sent as deltas of totals
_LATEST = ("mostrecent", "livemostrecent")  # gauge modes where the last write wins


class _Commits(NamedTuple):
    """The entries a batch read, and what each will have sent (see `DeltaBuffer.take`)."""

    entries: list[_Entry]
    values: list[tuple[Any, float, object]]

    def add(self, entry: _Entry, sent: Any, stamp: float, seen: object) -> None:
        self.entries.append(entry)
        self.values.append((sent, stamp, seen))


class _Tracked:
    """One metric's tracked series, and those written since the last batch.

    ``changed`` is the list that the series' ``sink`` points to (see
    ``_series.py``): a series written since it was last read is in it once.
    """

    __slots__ = ("all", "changed", "entries", "polled")

    def __init__(self) -> None:
        self.entries: dict[LabelSet, _Entry] = {}
        self.changed: list[Series] = []
        self.polled: dict[LabelSet, _Entry] = {}  # gauges whose value is a function: every batch
        self.all = False  # the next batch reads every series (a resend)

    def todo(self, whole: bool) -> list[_Entry]:
        """The entries the next batch must read; each is armed again before it is read.

        Arming before reading means a write that comes after the read queues the
        series again (for the next batch): nothing written is ever missed.
        """
        changed = self.changed
        n = len(changed)
        written = changed[:n]
        del changed[:n]  # appends that land meanwhile stay (atomic under the GIL)
        entries = self.entries
        if whole or self.all:
            self.all = False
            found = list(entries.values())
        else:
            by_id: dict[int, _Entry] = {}  # a series queued twice is read once
            for series in written:
                entry = entries.get(series.labels)
                if entry is not None and entry.series is series:  # not removed since
                    by_id[id(entry)] = entry
            for entry in self.polled.values():
                by_id[id(entry)] = entry
            found = list(by_id.values())
        for entry in found:
            series = entry.series
            series.sink = changed
            if isinstance(series, ScalarSeries) and series.function is not None:
                self.polled[series.labels] = entry
        return found


class DeltaBuffer:
    """The series of one worker and what of them has been sent (thread-safe).

    A batch reads only the series written since the last one (see `_Tracked`):
    building one costs what changed, not what is held.
    """

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.seq = _first_seq()
        self.pending: Batch | None = None
        # Reentrant: a gauge's set_function, called while a batch is built, may create series.
        self._lock = threading.RLock()
        self._tracked: weakref.WeakKeyDictionary[MetricSpec, _Tracked] = weakref.WeakKeyDictionary()
        self._handed: dict[tuple[MetricSpec, str], tuple[Any, float, object, bool]] = {}
        self._deletes: dict[tuple[str, str], MetricSpec] = {}  # removals for the next batch
        self._stored: dict[str, int] = {}  # per metric, its last acknowledged batch number
        self.marked: int | None = None  # the batch number the store confirmed last
        self._whole = True  # the next batch must carry every series' state
        self._sinks: dict[MetricSpec, list[Series]] = {}

    def track(self, spec: MetricSpec, series: Series) -> None:
        """Start sending ``series``; what the store does not have yet goes with the next batch."""
        with self._lock:
            # totals need 16 B less per series than values (at 100k series, 1.6 MB)
            entry = _Entry(series) if spec.kind in _TOTALS else _Latest(series)
            handed = (  # a predecessor's state, if any
                self._handed.pop((spec, series_field(series.labels)), None)
                if self._handed
                else None
            )
            if handed is not None:
                entry.sent, entry.recreate = handed[0], handed[3]
                if isinstance(entry, _Latest):
                    entry.stamp, entry.seen = handed[1], handed[2]
            tracked = self._tracked.get(spec)
            if tracked is None:
                tracked = self._tracked[spec] = _Tracked()
                sink = self._sinks.pop(spec, None)  # a predecessor's (see Handover.sinks)
                if sink is not None:
                    tracked.changed = sink
            tracked.entries[series.labels] = entry
            series.sink = None
            tracked.changed.append(series)  # read by the next batch, then armed

    def remove(self, spec: MetricSpec, labels: LabelSet) -> None:
        """Stop sending a series; the next batch deletes it in the store (every worker's)."""
        with self._lock:
            tracked = self._tracked.get(spec)
            if tracked is not None:
                entry = tracked.entries.pop(labels, None)
                tracked.polled.pop(labels, None)
                if entry is not None:
                    entry.series.sink = None  # written through a stale handle: not queued
            self._deletes[(spec.name, series_field(labels))] = spec

    def specs(self) -> list[MetricSpec]:
        """The metrics with tracked series."""
        with self._lock:
            return list(self._tracked)

    def dirty(self) -> bool:
        """Whether the next batch has anything to send (cheap: no series is read)."""
        with self._lock:
            if self.pending is not None or self._deletes or self._whole:
                return True
            return any(t.changed or t.polled or t.all for t in self._tracked.values())

    def size(self) -> int:
        """How many series are tracked."""
        with self._lock:
            return sum(len(t.entries) for t in self._tracked.values())

    def handover(self) -> Handover:
        """Everything a successor on the same store needs to go on exactly once."""
        with self._lock:
            sent = {
                (spec, series_field(e.series.labels)): e.state
                for spec, tracked in self._tracked.items()
                for e in tracked.entries.values()
                if e.sent is not None
            }
            return Handover(
                self.worker,
                self.seq,
                self.pending,
                sent,
                dict(self._deletes),
                dict(self._stored),
                self.marked,
                self._whole,
                {spec: tracked.changed for spec, tracked in self._tracked.items()},
            )

    def adopt(self, state: Handover) -> None:
        """Continue a predecessor's worker: its pending batch, removals, what it had sent."""
        with self._lock:
            self.worker, self.seq, self.pending = state.worker, state.seq, state.pending
            self._handed, self._deletes = state.sent, {**state.deletes, **self._deletes}
            self._stored, self.marked, self._whole = state.stored, state.marked, state.whole
            self._sinks = state.sinks

    def take(self, now: float) -> Batch | None:
        """The batch to send: the pending one, else a new one (None when nothing changed)."""
        with self._lock:
            if self.pending is not None:
                return self.pending
            by_name: dict[str, MetricOps] = {}
            for (name, field), spec in self._deletes.items():
                ops = by_name.setdefault(name, MetricOps(spec, self._stored.get(name)))
                ops.deletes.append(field)
            self._rewrite_shared(by_name)
            # What each read series will have sent, applied once the whole batch exists.
            # Entries in one list and values (atomic tuples) in another: a tuple that
            # held an entry would stay tracked, and a big batch would then push the
            # garbage collector into walking the whole heap.
            commits = _Commits([], [])
            breathe = Breather()  # a flush runs in a worker thread: let the loop in
            for spec, tracked in list(self._tracked.items()):
                todo = tracked.todo(self._whole)
                if not todo:
                    continue
                # Metrics of one name (two registries, say) share keys: one script call each.
                ops = by_name.setdefault(spec.name, MetricOps(spec, self._stored.get(spec.name)))
                for n, entry in enumerate(todo, 1):
                    if not n % BREATHE:
                        breathe()
                    try:
                        self._add_ops(ops, spec, entry, commits, now)
                    except Exception:  # a set_function that raises: skip it, send the rest
                        log.exception(
                            "apytheus: cannot read series %s of %s", entry.series.labels, spec.name
                        )
            ops_list = [o for o in by_name.values() if o]
            # only now that the whole batch exists
            self._deletes.clear()
            for entry, (sent, stamp, seen) in zip(commits.entries, commits.values, strict=True):
                entry.sent, entry.recreate = sent, False
                if isinstance(entry, _Latest):
                    entry.stamp, entry.seen = stamp, seen
            if not ops_list:
                return None
            self.seq += 1
            self.pending = Batch(self.seq, ops_list, self._whole)
            return self.pending

    def _rewrite_shared(self, by_name: dict[str, MetricOps]) -> None:
        """Series deleted by this batch that another metric of the same name (another
        registry) still has: write them again after the delete."""
        for spec, tracked in self._tracked.items():
            ops = by_name.get(spec.name)
            if ops is not None and tracked.entries:
                for field in ops.deletes:  # the cost follows the deletes, not the series held
                    entry = tracked.entries.get(_labels_of(spec, field))
                    if entry is not None:
                        entry.recreate = True
                        tracked.changed.append(entry.series)

    def mark(self, batch: Batch | None) -> Mark:
        """What the write of ``batch`` (None: nothing changed) asks the store to check."""
        with self._lock:
            if batch is None:
                return Mark(self.marked, self.seq, self._whole)
            return Mark(self.marked, batch.seq, batch.whole)

    def ack(
        self,
        batch: Batch | None,
        mark: Mark,
        confirmed: bool = True,
        behind: frozenset[str] | set[str] = frozenset(),
    ) -> bool:
        """The store applied ``batch`` (and checked ``mark``): the next take builds a new one.

        ``confirmed`` is false when the store did not hold the batch number this
        worker had confirmed there: it lost data (Redis restarted empty, a worker
        pruned while stopped) or went back to an older snapshot. ``behind`` are
        the batch's metrics whose keys held an older batch number of this worker
        than its last acknowledged one, or none (a Redis Cluster node that lost
        or rolled back a slot). Either way the lost series are sent again:
        gauges, infos and enums their state (with the time it was first sent),
        counters and histograms their series (from 0 after a loss, with a new
        ``_created``: an ordinary counter reset). Returns whether that happened
        (the next batch holds it).
        """
        with self._lock:
            if batch is not None and self.pending is batch:
                self.pending = None
            if not confirmed:
                # The store lost or rolled back this worker's data: send all of it again.
                # Per-metric numbers from before tell nothing now; this batch's hold.
                self._stored = {o.spec.name: batch.seq for o in batch.ops} if batch else {}
                self._whole = True
                self._resend(None)
                return True
            self.marked = mark.new
            if mark.force:
                self._whole = False
            if batch is not None:
                for ops in batch.ops:
                    self._stored[ops.spec.name] = batch.seq
            if behind:
                self._resend(behind)
            return bool(behind)

    def _resend(self, names: frozenset[str] | set[str] | None) -> None:
        """Send the state of every series of ``names`` (None: all) again."""
        for spec, tracked in self._tracked.items():
            if names is None or spec.name in names:
                tracked.all = True
                for entry in tracked.entries.values():
                    entry.recreate = True

    def rebase(self, worker: str) -> None:
        """After fork: a new worker that never re-sends what its parent recorded.

        Counters and histograms keep their totals but count only what the child
        adds. Gauges start again from 0, as a new process' would (otherwise a
        value set before the fork would be summed once per worker); info and
        enum keep their state, which is the same in every worker. Removals
        queued before the fork are the parent's to send.
        """
        self._lock = threading.RLock()  # the parent's may have been held by another thread
        self.worker = worker
        self.seq = _first_seq()
        self.pending = None
        self._deletes = {}
        self._stored = {}
        self.marked = None
        self._whole = True
        for spec, tracked in self._tracked.items():
            for entry in tracked.entries.values():
                entry.sent = None
                entry.recreate = False
                series = entry.series
                if spec.kind in _TOTALS:
                    entry.sent = _totals(series)
                elif spec.kind == "gauge" and isinstance(series, ScalarSeries):
                    series.cells = []

    def _add_ops(
        self,
        ops: MetricOps,
        spec: MetricSpec,
        entry: _Entry,
        commits: _Commits,
        now: float,
    ) -> None:
        kind, series, field = spec.kind, entry.series, series_field(entry.series.labels)
        new = entry.sent is None or entry.recreate  # the store does not have this series
        if kind == "counter":
            total = _totals(series)
            _delta(ops, field, total, entry.sent or 0.0, new)
            commits.add(entry, total, 0.0, None)
        elif kind in ("histogram", "summary"):
            totals = sent = _totals(series)
            before = entry.sent
            if spec.native is not None:  # ((classic totals), {native bucket key: count})
                totals, buckets = sent
                before, was_buckets = before or (None, {})
                for key, count in buckets.items():
                    if count != was_buckets.get(key, 0):
                        ops.incr.append(
                            (field + SEP + native_part(key), count - was_buckets.get(key, 0))
                        )
            before = before or (0.0,) * len(totals)
            parts = bucket_parts(spec.bounds)
            for i, (now_v, was) in enumerate(zip(totals, before, strict=True)):
                # a new series writes its +Inf bucket, so that it exists with zeros, and a
                # sum that is no number (NaN, ±Inf) again: a delta cannot carry it
                force = new and (i == len(totals) - 2 or not math.isfinite(now_v))
                _delta(ops, field + SEP + parts[i], now_v, was, force)
            commits.add(entry, sent, 0.0, None)
        else:
            latest = cast(_Latest, entry)  # made so by track(): this kind is sent as a value
            value = _state(series)
            # Where the last write wins, a write counts even if it changed nothing:
            # a set() makes new cells, info() a new tuple.
            seen = _written(series) if kind != "gauge" or spec.mode in _LATEST else None
            changed = value != entry.sent or seen is not latest.seen
            if changed or entry.recreate:
                key = field + SEP + self.worker
                ops.sets.append((key, value))
                # sent again unchanged: with the time it was first sent, for `mostrecent`
                stamp = now if changed else latest.stamp
                if _touched(series):  # an untouched gauge never wins `mostrecent`
                    ops.stamped.append((key, stamp))
                commits.add(entry, value, stamp, seen)
        if new and kind in _TOTALS:
            # a series the store lost starts again from 0 now (as after a restart)
            ops.created.append((field, now if entry.recreate else series.created))
        if kind in KINDS:  # best effort, not exactly once: marked sent at once
            found, entry.shown = to_send(series, field, entry.shown, new)
            ops.exemplars += found


def _labels_of(spec: MetricSpec, field: str) -> LabelSet:
    """The labels a series' hash field names (see `series_field`)."""
    return LabelSet(spec.label_names, tuple(json.loads(field)))


def _first_seq() -> int:
    """Batch numbers grow across a worker id's lifetimes (microseconds: exact in a double)."""
    return int(time.time() * 1_000_000)


def _delta(ops: MetricOps, key: str, now: float, was: float, force: bool) -> None:
    if math.isfinite(now):
        delta = now - was
        if delta or force:
            ops.incr.append((key, delta))
    elif force or not (now == was or (now != now and was != was)):
        # an infinite or NaN total: store it as it is (+Inf, -Inf or NaN), not as a delta
        ops.sets.append((key, floatstr(now)))


def _totals(series: Series) -> Any:
    if isinstance(series, ScalarSeries):
        return total(series.cells)
    if isinstance(series, HistogramSeries):
        counts, summed = series.snapshot()
        totals = (*map(float, counts), summed)  # a tuple of floats: the collector untracks it
        return (totals, series.native_snapshot()) if series.native else totals
    raise TypeError(f"{series!r} has no totals")


def _written(series: Series) -> object:
    """What a write to a gauge-like series replaces (so its identity tells a new write)."""
    if isinstance(series, InfoSeries):
        return series.info
    assert isinstance(series, ScalarSeries)
    return series.cells


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
