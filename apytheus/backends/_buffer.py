"""BUFFER: turn per-thread cumulative cells into exactly-once batches (pure data, no I/O).

Cells only grow, so the deltas since the last batch are ``total - sent``.
Taking a batch moves ``sent`` forward at once; the batch then stays pending
until the store acknowledges it, and is re-sent *unchanged* (same sequence
number) until it is. A store that checks the sequence number atomically
therefore applies every delta exactly once, however often the connection
drops. Memory is bounded by the number of series: the cells, one ``sent``
per series, and at most one pending batch.
"""

from __future__ import annotations

import json
import math
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from .._labels import LabelSet
from .._samples import floatstr
from ._protocol import MetricSpec, Series
from ._series import HistogramSeries, InfoSeries, ScalarSeries

SEP = "\t"  # between a series' field and its part (bucket, sum, worker): JSON never has a raw tab


def series_field(labels: LabelSet) -> str:
    """The hash field naming a series: its label values as compact JSON, in declared order."""
    return json.dumps([v for _, v in labels.pairs], ensure_ascii=False, separators=(",", ":"))


def bucket_parts(bounds: tuple[float, ...]) -> list[str]:
    """Field suffixes of a histogram's buckets (``le`` as exposed), then ``sum``."""
    return [floatstr(b) for b in bounds] + ["+Inf", "sum"]


@dataclass
class MetricOps:
    """What one batch does to one metric's hashes."""

    spec: MetricSpec
    incr: list[tuple[str, float]] = field(default_factory=list)  # HINCRBYFLOAT field delta
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


class DeltaBuffer:
    """The series of one worker and what of them has been sent (thread-safe)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.seq = 0
        self.pending: Batch | None = None
        self._lock = threading.Lock()
        self._tracked: weakref.WeakKeyDictionary[MetricSpec, dict[LabelSet, _Entry]] = (
            weakref.WeakKeyDictionary()
        )

    def track(self, spec: MetricSpec, series: Series) -> None:
        """Start sending ``series``; what it already holds is sent by the next batch."""
        with self._lock:
            self._tracked.setdefault(spec, {})[series.labels] = _Entry(
                series, series_field(series.labels)
            )

    def untrack(self, spec: MetricSpec, labels: LabelSet | None) -> None:
        """Stop sending one series, or all of ``spec``."""
        with self._lock:
            entries = self._tracked.get(spec)
            if entries is not None:
                if labels is None:
                    entries.clear()
                else:
                    entries.pop(labels, None)

    def size(self) -> int:
        """How many series are tracked."""
        with self._lock:
            return sum(len(e) for e in self._tracked.values())

    def take(self, now: float) -> Batch | None:
        """The batch to send: the pending one, else a new one (None when nothing changed)."""
        with self._lock:
            if self.pending is not None:
                return self.pending
            ops = [o for spec, entries in self._tracked.items() if (o := self._ops(spec, entries))]
            if not ops:
                return None
            self.seq += 1
            self.pending = Batch(self.seq, ops)
            return self.pending

    def ack(self, batch: Batch) -> None:
        """The store applied ``batch``: the next take builds a new one."""
        with self._lock:
            if self.pending is batch:
                self.pending = None

    def rebase(self, worker: str) -> None:
        """After fork: a new worker that never re-sends what its parent recorded.

        Counters and histograms keep their totals but count only what the child
        adds. Gauges start again from 0, as a new process' would (otherwise a
        value set before the fork would be summed once per worker); info and
        enum keep their state, which is the same in every worker.
        """
        with self._lock:
            self.worker = worker
            self.seq = 0
            self.pending = None
            for spec, entries in self._tracked.items():
                for entry in entries.values():
                    entry.sent = None
                    series = entry.series
                    if spec.kind in ("counter", "histogram", "summary"):
                        entry.sent = _totals(series)
                    elif spec.kind == "gauge" and isinstance(series, ScalarSeries):
                        series.cells.clear()
                        series.base = None

    def _ops(self, spec: MetricSpec, entries: dict[LabelSet, _Entry]) -> MetricOps:
        ops = MetricOps(spec)
        kind = spec.kind
        for entry in list(entries.values()):
            series = entry.series
            new = entry.sent is None
            if kind == "counter":
                total = _totals(series)
                delta = total - (entry.sent or 0.0)
                if delta or new:
                    _add_delta(ops, entry.field, delta)
                entry.sent = total
            elif kind in ("histogram", "summary"):
                assert isinstance(series, HistogramSeries)
                totals = _totals(series)
                before = entry.sent or [0.0] * len(totals)
                parts = bucket_parts(spec.bounds)
                for i, (now_v, was) in enumerate(zip(totals, before, strict=True)):
                    if now_v != was or (new and i == len(totals) - 2):
                        _add_delta(ops, entry.field + SEP + parts[i], now_v - was)
                entry.sent = totals
            else:
                value = _state(series)
                if value != entry.sent:
                    key = entry.field + SEP + self.worker
                    ops.sets.append((key, value))
                    if _touched(series):  # an untouched gauge never wins `mostrecent`
                        ops.stamped.append(key)
                    entry.sent = value
            if new and kind in ("counter", "histogram", "summary"):
                ops.created.append((entry.field, series.created))
        return ops


def _add_delta(ops: MetricOps, key: str, delta: float) -> None:
    if math.isfinite(delta):
        ops.incr.append((key, delta))
    else:  # HINCRBYFLOAT refuses infinities: the total becomes +Inf/-Inf/NaN for good
        ops.sets.append((key, floatstr(delta)))


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
    return bool(series.cells) or series.base is not None or series.function is not None


def _state(series: Series) -> str:
    """A gauge-like series' value as stored (one field per worker)."""
    if isinstance(series, InfoSeries):
        return json.dumps(dict(series.info), ensure_ascii=False, separators=(",", ":"))
    assert isinstance(series, ScalarSeries)
    return floatstr(series.value())
