"""RECORD TARGET: per-series values kept as per-thread cumulative cells.

Every series holds a dict ``cells`` that maps a thread's key (see
``_thread_cells.py``: never reused, unlike a thread's ident) to that
thread's running total, and `BASE` to the base cell: what threads that
ended had added (folded in at flush and scrape time), and a gauge's
``set`` value. Keys are strings: a dict whose keys are all strings keeps
its items in 16 bytes each instead of 24, and a series' cells dict is the
largest part of what a series costs (about 180 bytes with one thread's
cell, against 220 with int keys). A thread only ever writes its own slot, so an
increment is a read-modify-write nobody else can interleave with: no lock,
no lost update, with or without the GIL (on free-threaded builds a dict
keeps each item consistent, and the slot still has a single writer). Readers
sum the slots. A lock per operation would cost more than the whole
increment does this way (see docs/benchmarks.md).

A series that a buffer sends somewhere (the Redis backend) also has a
``sink``: the buffer's list of series written since its last batch. A record
writes its cell first, then, if ``sink`` is set, calls ``changed()``, which
queues the series there once (and clears ``sink`` until the buffer has read
it). So the buffer reads only what was written, never every series it holds,
and recording pays one attribute test. With no buffer, ``sink`` stays None.

A counter's total only grows (until ``Counter.reset()`` replaces its cells:
folding an ended thread's cell moves it, the totals stay), so a
flusher that remembers what it last sent can compute exact deltas (see the
Redis backend), and a process forked mid-run simply takes the totals as its
new baseline. A gauge's ``set``
starts new cells (see ScalarSeries); gauges are flushed as values, not deltas.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._labels import LabelSet
from .._samples import Exemplar

BASE = "0"
"""The base cell's key: what ended threads added (and a gauge's ``set`` value)."""

Cells = dict[str, Any]
"""A series' cells by key: a float each (counters, gauges), a list each (histograms)."""


class _Queued:
    """What every series shares: the buffer's queue of written series (see above)."""

    __slots__ = ("sink",)
    sink: list[Any] | None

    def changed(self) -> None:
        """Queue this series for the buffer's next batch, once (the record path's slow part)."""
        sink = self.sink
        if sink is not None:
            self.sink = None
            sink.append(self)


class ScalarSeries(_Queued):
    """A counter, gauge or enum series: one float value.

    A gauge's ``set`` replaces the cells with a new dict holding the value in
    the base cell (no thread's key). That single store is atomic: an ``inc``
    that fetched the old dict lands in it and is forgotten, as if it came just
    before the ``set``. Nothing added before a ``set`` survives it, not even
    its rounding (``inc(inf)`` then ``set(5)`` is 5, not NaN). A counter's cells
    only grow; ``Counter.reset()`` replaces them the same way (the Redis buffer
    then sends a negative delta: this worker's contribution restarts from 0).
    """

    __slots__ = ("__weakref__", "cells", "created", "exemplar", "function", "labels")

    def __init__(self, labels: LabelSet) -> None:
        self.labels = labels
        self.cells: dict[str, float] = {}
        self.created = time.time()
        self.exemplar: Exemplar | None = None
        self.function: Callable[[], float] | None = None
        self.sink: list[Any] | None = None

    def set(self, value: float) -> None:
        """Set the value (gauges, enums): later increments are added to it."""
        self.cells = {BASE: value}
        if self.sink is not None:
            self.changed()

    def value(self) -> float:
        """The current value: the sum of every thread's cell (or the gauge's function)."""
        if self.function is not None:
            return float(self.function())
        return total(self.cells)


class HistogramSeries(_Queued):
    """A histogram or summary series: bucket counts and a sum per thread.

    A thread's cell is a list ``[n_0, …, n_k, sum]`` of *non-cumulative*
    counts, one per upper bound and one for ``+Inf``. The count is the sum of
    the buckets, so count and buckets can never disagree. A summary is a
    histogram with no bounds but ``+Inf``.

    A native histogram's cell also holds, before the sum, a dict of its native
    bucket counts by key (see `apytheus._native`): ``[n_0, …, n_k, {key: n}, sum]``,
    so that ``observe`` finds both in one lookup.
    """

    __slots__ = (
        "__weakref__",
        "bounds",
        "cells",
        "created",
        "exemplars",
        "labels",
        "native",
        "width",
    )

    def __init__(self, labels: LabelSet, bounds: tuple[float, ...], native: bool = False) -> None:
        self.labels = labels
        self.sink: list[Any] | None = None
        self.bounds = bounds
        self.width = len(bounds) + 1
        self.cells: dict[str, list[Any]] = {}
        self.created = time.time()
        self.exemplars: list[Exemplar | None] = [None] * self.width
        self.native = native

    def new_cell(self) -> list[Any]:
        """A zeroed cell for one thread."""
        return [0] * self.width + [{}, 0.0] if self.native else [0] * self.width + [0.0]

    def snapshot(self) -> tuple[list[float], float]:
        """Return (non-cumulative bucket counts, sum) summed over threads."""
        cells = list(self.cells.values())
        if len(cells) == 1:  # one thread recorded (or a store made it): no adding up
            cell = cells[0].copy()
            return cell[: self.width], float(cell[-1])
        counts: list[float] = [0] * self.width
        total = 0.0
        for cell in cells:
            cell = cell.copy()
            for i in range(self.width):
                counts[i] += cell[i]
            total += cell[-1]
        return counts, total

    def native_snapshot(self) -> dict[int, float]:
        """The native bucket counts by key, summed over threads ({} for a classic series)."""
        found: list[dict[int, float]] = (
            [cell[-2] for cell in list(self.cells.values())] if self.native else []
        )
        if len(found) == 1:
            return found[0].copy()
        out: dict[int, float] = {}
        for buckets in found:
            for key, count in buckets.copy().items():
                out[key] = out.get(key, 0) + count
        return out


class InfoSeries(_Queued):
    """An info series: a set of key-value pairs, replaced as a whole."""

    __slots__ = ("created", "info", "labels")

    def __init__(self, labels: LabelSet) -> None:
        self.labels = labels
        self.sink: list[Any] | None = None
        self.info: tuple[tuple[str, str], ...] = ()
        self.created = time.time()


def total(cells: dict[str, float]) -> float:
    """The sum of a series' cells, read while other threads may write them.

    ``sum`` over the values of a dict of numbers runs in C, where no other
    thread can run, so it needs no copy (the cheap path at 100k series); a
    build without the GIL may see the dict change size, and then sums a copy.
    """
    try:
        return float(sum(cells.values()))
    except RuntimeError:  # changed size during iteration (free-threaded builds)
        return float(sum(cells.copy().values()))
