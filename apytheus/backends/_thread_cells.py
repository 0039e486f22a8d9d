"""RECORD TARGET: each thread's slot in a series' cells, handed back when the thread ends.

A series keeps one cell per thread that wrote it (see ``_series.py``): a
counter's or gauge's cells are a list indexed by the writing thread's *slot*,
a histogram's a dict keyed by it. Each slot has a single writer, so a record
is a read-modify-write that nobody else interleaves with, and takes no lock.

* **A slot is a small number**, the lowest one free when the thread first
  records (`this_thread`, a ``threading.local``). The first thread to record
  (usually the one running the event loop) takes 0, so the common series
  holds one cell.
* **A thread that ended hands its slot back**, and the next new thread takes
  it, with the cells it left: the new thread adds to the old one's totals,
  which are still counted. So threads that come and go (a pool made per job,
  short-lived workers) leave no cells behind and nothing has to be folded or
  moved: a series holds at most as many cells as threads ever recorded at the
  same time.
* **An ended thread is known by its thread-local state going away.** CPython
  drops a thread's ``threading.local`` values when the thread ends (after its
  last Python code ran) and, in a forked child, for the threads that did not
  survive the fork. The `_Slot` kept there then hands the number back. A
  thread's writes all come before that, so two live threads never share a
  slot.
* **A record from a finalizer that runs as its thread ends** (a ``__del__`` of
  another thread-local value) comes after that thread's local state is gone:
  it takes a new slot, which is never handed back (CPython does not drop the
  state made then). Totals stay exact; only such a thread's slot is lost.
* **Totals never go back.** A slot's cell only grows for a counter, and a sum
  of growing terms in a fixed order (slot order) never reads lower, so a
  counter never seems to go back (Prometheus would take that for a reset).
"""

from __future__ import annotations

import heapq
import os
import threading

_lock = threading.Lock()
_taken = 0  # slots handed out so far: 0 .. _taken - 1
_free: list[int] = []  # a heap of the slots handed back and taken in again
_returned: list[int] = []  # slots of ended threads, appended without a lock


def _take() -> int:
    global _taken
    with _lock:  # once per thread
        while _returned:  # list.pop is atomic: an append that lands meanwhile stays
            heapq.heappush(_free, _returned.pop())
        if _free:
            return heapq.heappop(_free)
        _taken += 1
        return _taken - 1


class _Slot:
    """A thread's slot number; handed back when the thread's local state goes."""

    __slots__ = ("number",)

    def __init__(self) -> None:
        self.number = _take()

    def __del__(self) -> None:
        # No lock: this may run in a fork, or in a garbage collection that
        # interrupted _take in this very thread. An append is atomic.
        try:
            _returned.append(self.number)
        except Exception:  # interpreter shutdown: the module may be half gone
            pass


class _ThisThread(threading.local):
    """What the record path reads of the calling thread (made on its first record)."""

    slot: int
    owner: _Slot

    def __init__(self) -> None:
        self.owner = _Slot()
        self.slot = self.owner.number


this_thread = _ThisThread()
"""The calling thread's ``slot`` (its cells' index or key in every series)."""


def slots_in_use() -> int:
    """How many slots live threads hold (for tests and diagnostics)."""
    with _lock:
        return _taken - len(_free) - len(_returned)


def _after_fork_in_child() -> None:
    """A thread that did not survive the fork may have held the lock: make a new one."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
