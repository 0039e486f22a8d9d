"""RECORD TARGET: each thread's cell key, and folding the cells of threads that ended.

A series keeps one cell per thread that wrote it (see ``_series.py``). Threads
come and go (a pool made per job, short-lived workers), so the cells of a
thread that ended are folded into its series' base cell, `BASE` (the slot a
gauge's ``set`` writes), and dropped.

* **Keys are never reused.** A thread's cells are keyed by a number (as a
  string, see ``_series.py``) it takes on its first record (`this_thread`, a
  ``threading.local``), not by ``threading.get_ident()``, which the system hands
  to a new thread as soon as one ends. Once a thread has ended nothing writes
  its cells again, so a fold races with no writer, whenever it runs. Reading
  the key costs about what ``get_ident()`` did, and the record path takes no lock.
* **An ended thread is known by its thread-local state going away.** CPython
  drops a thread's ``threading.local`` values when the thread ends (after its
  last Python code ran) and, in a forked child, for the threads that did not
  survive the fork. An `_Owner` kept there then queues the thread's key and
  the series it has cells in (a weak set, filled on the record path's slow
  branch: a thread's first write into a series).
* **The fold runs at flush and scrape time** (`fold`: the in-process backend's
  ``collect`` and the Redis buffer's ``take`` call it), under a lock the record
  path never takes. Every `FOLD_EVERY` ended threads, an ending thread folds
  too, so that a process that is never scraped keeps its cells bounded as well.
* **A reader never sees a fold half done.** The new base cell and a zero in the
  ended thread's place go in with one ``dict.update`` (no Python code runs in
  it), then the zero is deleted: every read adds up to the same totals before,
  between and after. A base cell is replaced, never changed in place, because a
  reader may be copying it. Counts are ints and add up exactly in any order; a
  float total added up in another order may round differently, so where it
  would read lower the new base is nudged up by an ulp or two: a counter never
  seems to go back (Prometheus would take that for a reset).
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from ._series import BASE, HistogramSeries, total

FOLD_EVERY = 256
"""Ended threads that make an ending thread fold (when no scrape or flush did)."""

_fold_lock = threading.Lock()
_key_lock = threading.Lock()
_next_key = 1  # 0 is the base cell's
_ended: list[tuple[str, weakref.WeakSet[Any]]] = []  # threads to fold: key, series written


def _new_key() -> str:
    global _next_key
    with _key_lock:  # once per thread; itertools.count is not atomic without the GIL
        key = _next_key
        _next_key += 1
    return str(key)


class _Owner:
    """A thread's key and the series it has cells in; queued for a fold when the thread ends."""

    __slots__ = ("key", "series")

    def __init__(self) -> None:
        self.key = _new_key()
        # The main thread ends with the interpreter: its cells are never folded, so
        # it keeps no list of them (that list costs a weak reference per series).
        main = threading.current_thread() is threading.main_thread()
        self.series: weakref.WeakSet[Any] | None = None if main else weakref.WeakSet()

    def __del__(self) -> None:
        if self.series is None:
            return
        try:
            _ended.append((self.key, self.series))  # atomic: no lock (this may run in a fork)
            if len(_ended) >= FOLD_EVERY:
                fold(block=False)
        except Exception:  # interpreter shutdown: the module may be half gone
            pass


class _ThisThread(threading.local):
    """What the record path reads of the calling thread (made on its first record)."""

    key: str
    owner: _Owner

    def __init__(self) -> None:
        self.owner = _Owner()
        self.key = self.owner.key


this_thread = _ThisThread()
"""The calling thread's ``key`` (its cells' key in every series) and ``owner``."""


def enlist(series: Any) -> None:
    """Note that the calling thread has a cell in ``series`` (its first write there)."""
    written = this_thread.owner.series
    if written is not None:
        written.add(series)


def fold(block: bool = True) -> int:
    """Fold the cells of the threads that ended into their series' base cells.

    Costs what those threads wrote (one step per series each), nothing when no
    thread ended. ``block=False``: do nothing if another fold is running.
    Returns how many ended threads were folded.
    """
    if not _ended or not _fold_lock.acquire(blocking=block):
        return 0
    try:
        n = len(_ended)
        ended = _ended[:n]
        del _ended[:n]  # appends that land meanwhile stay (atomic under the GIL)
        for key, written in ended:
            for series in list(written):
                if isinstance(series, HistogramSeries):
                    _fold_histogram(series, key)
                else:
                    _fold_scalar(series.cells, key)
        return n
    finally:
        _fold_lock.release()


def _fold_scalar(cells: dict[str, Any], key: str) -> None:
    """A counter's or gauge's cell of ``key`` into its base cell (see the module doc)."""
    if key not in cells:
        return  # a gauge's set() or a counter's reset() has replaced the cells since
    seen = cells.copy()
    new = seen.get(BASE, 0) + seen[key]
    if new.__class__ is float:
        trial = seen.copy()
        del trial[key]

        def read(base: float) -> float:
            trial[BASE] = base
            return total(trial)

        new = _not_lower(total(seen), new, read)
    cells.update({BASE: new, key: 0})  # one step: readers see the old totals or the new
    del cells[key]  # a zero: the totals do not change


def _fold_histogram(series: HistogramSeries, key: str) -> None:
    """A histogram's cell of ``key`` (counts, native counts, sum) into its base cell."""
    cells = series.cells
    # a copy of every cell, as it is now: live threads go on writing theirs in place
    seen = {k: cell.copy() for k, cell in cells.copy().items()}
    dead = seen.get(key)
    if dead is None:
        return
    base = seen.get(BASE)
    if base is None:
        new = dead  # a copy: the ended thread's cell as it is, now the base
    else:
        width = series.width
        new = [a + b for a, b in zip(base[:width], dead[:width], strict=True)]
        if series.native:  # a new dict: a reader may be copying the base's
            merged = dict(base[-2])
            for bucket, count in dead[-2].items():
                merged[bucket] = merged.get(bucket, 0) + count
            new.append(merged)
        new.append(base[-1] + dead[-1])
    if new[-1].__class__ is float:
        trial = HistogramSeries.__new__(HistogramSeries)  # the reader's own arithmetic
        trial.width, trial.cells = series.width, dict(seen)
        before = trial.snapshot()[1]
        del trial.cells[key]

        def read(summed: float) -> float:
            new[-1] = summed
            trial.cells[BASE] = new
            return trial.snapshot()[1]

        new[-1] = _not_lower(before, new[-1], read)
    cells.update({BASE: new, key: series.new_cell()})  # one step, as for a scalar
    del cells[key]


def _not_lower(before: float, new: float, read: Callable[[float], float]) -> float:
    """``new``, nudged up while ``read(new)`` (the folded total) is below ``before``."""
    for _ in range(64):  # an ulp or two does it; NaN and infinities never enter
        if not read(new) < before:
            break
        new = math.nextafter(new, math.inf)
    return new


def _after_fork_in_child() -> None:
    """A thread that did not survive the fork may have held a lock: make new ones."""
    global _fold_lock, _key_lock
    _fold_lock = threading.Lock()
    _key_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
