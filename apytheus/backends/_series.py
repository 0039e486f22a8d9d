"""RECORD TARGET: per-series values kept as per-thread cumulative cells.

Every series holds ``cells``: one running total per thread that wrote it, at
that thread's *slot* (see ``_thread_cells.py``: a small number, handed to
the next new thread once its thread ended). A counter's or gauge's cells are
a list of floats indexed by slot; a histogram's a dict of cells (lists) keyed
by slot. A list is the smallest container there is (64 bytes with one cell,
against 184 for a dict): at 100k series, cells are a large part of what a
series costs. A thread only ever writes its own slot, so an increment is a
read-modify-write nobody else can interleave with: no lock, no lost update,
with or without the GIL (on free-threaded builds a list keeps each item
consistent, and the slot still has a single writer). A thread whose slot is
beyond the list's end appends zeros up to it first: appends never touch
another slot. Readers sum the slots. A lock per operation would cost more
than the whole increment does this way (see docs/benchmarks.md).

A series that a buffer sends somewhere (the Redis backend) also has a
``sink``: the buffer's list of series written since its last batch. A record
writes its cell first, then, if ``sink`` is set, calls ``changed()``, which
queues the series there once (and clears ``sink`` until the buffer has read
it). So the buffer reads only what was written, never every series it holds,
and recording pays one attribute test. With no buffer, ``sink`` stays None.

A counter's total only grows (until ``Counter.reset()`` replaces its cells),
so a flusher that remembers what it last sent can compute exact deltas (see
the Redis backend), and a process forked mid-run simply takes the totals as
its new baseline. A gauge's ``set`` starts new cells (see ScalarSeries);
gauges are flushed as values, not deltas.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._labels import LabelSet
from .._samples import Exemplar

BASE = 0
"""The slot a value that no thread recorded goes in: a gauge's ``set``, a merged read's."""


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

    A gauge's ``set`` replaces the cells with a new list holding the value
    (in slot 0: the list is new, so no thread has written it yet). That single
    store is atomic: an ``inc`` that fetched the old list lands in it and is
    forgotten, as if it came just before the ``set``. Nothing added before a
    ``set`` survives it, not even its rounding (``inc(inf)`` then ``set(5)`` is
    5, not NaN). A counter's cells only grow; ``Counter.reset()`` replaces them
    the same way (the Redis buffer then sends a negative delta: this worker's
    contribution restarts from 0). Empty cells: never written.
    """

    __slots__ = ("cells", "created", "exemplar", "function", "labels")

    def __init__(self, labels: LabelSet) -> None:
        self.labels = labels
        self.cells: list[float] = []
        self.created = time.time()
        self.exemplar: Exemplar | None = None
        self.function: Callable[[], float] | None = None
        self.sink: list[Any] | None = None

    def set(self, value: float) -> None:
        """Set the value (gauges, enums): later increments are added to it."""
        self.cells = [value]
        if self.sink is not None:
            self.changed()

    def value(self) -> float:
        """The current value: the sum of every thread's cell (or the gauge's function)."""
        if self.function is not None:
            return float(self.function())
        return total(self.cells)


class HistogramSeries(_Queued):
    """A histogram or summary series: bucket counts and a sum per thread.

    ``cells`` maps a thread's slot to its cell, a list ``[n_0, …, n_k, sum]`` of *non-cumulative*
    counts, one per upper bound and one for ``+Inf``. The count is the sum of
    the buckets, so count and buckets can never disagree. A summary is a
    histogram with no bounds but ``+Inf``.

    A native histogram's cell also holds, before the sum, a dict of its native
    bucket counts by key (see `apytheus._native`): ``[n_0, …, n_k, {key: n}, sum]``,
    so that ``observe`` finds both in one lookup.
    """

    __slots__ = (
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
        self.cells: dict[int, list[Any]] = {}
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


def total(cells: list[float]) -> float:
    """The sum of a series' cells, read while other threads may write them.

    ``sum`` over a list runs in C: no copy needed, the cheap path at 100k
    series. Another thread may add to its own cell meanwhile (without the
    GIL, even during the sum); each cell only grows for a counter and the
    cells are added in slot order, so a total never reads lower than before.
    """
    return float(sum(cells))


def grow(cells: list[float], slot: int, amount: float) -> None:
    """Add ``amount`` at ``slot``, beyond the end of ``cells`` (the record path's slow branch).

    Appends zeros up to the slot, then the amount. No lock: appends only make
    new items, and a thread adds to an item (``+=``) only once it exists, so
    two threads growing one list at once lose nothing. If another thread
    appended meanwhile, the amount lands in a later slot than this thread's:
    still counted once, and this thread's own cell is made by then.
    """
    while len(cells) < slot:
        cells.append(0.0)
    if len(cells) == slot:
        cells.append(amount)
    else:
        cells[slot] += amount


def read_series(labels: LabelSet) -> ScalarSeries:
    """A series for what a read merged: its one cell made before anyone can see it."""
    series = ScalarSeries(labels)
    series.cells = [0.0]
    return series


def put(series: ScalarSeries, value: float) -> None:
    """Store ``value`` in a series made by `read_series` (one atomic store, in place).

    In place: a new list per series and read would keep the garbage collector
    busy promoting them (at 100k series, a full collection every scrape or two);
    two reads storing at once (overlapping scrapes) leave one cell either way.
    """
    series.cells[BASE] = value
