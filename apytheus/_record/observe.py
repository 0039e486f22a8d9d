"""RECORD: what a histogram or summary does: ``observe`` (the hot path) and timing."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, overload

from .._labels import LabelPairs
from .._native import NAN, Fast, bucket_key, fast
from ..backends._thread_cells import this_thread
from .family import Family
from .handle import Handle
from .timers import Timer
from .values import exemplar_of, number

F = TypeVar("F", bound=Callable[..., Any])


class ObservedHandle(Handle):
    """Histogram and Summary handles: ``observe`` (the hot path), ``time``, the decorator."""

    __slots__ = ("_bounds", "_native")
    _bounds: tuple[float, ...]
    _native: Fast | None  # a native histogram's bucket layout, as the record path reads it
    _timed: ClassVar[str] = "observe"  # what time() hands the seconds to

    def _bind(self, family: Family, labels: dict[str, str], pairs: LabelPairs) -> None:
        self._bounds = family.bounds
        self._native = None if family.native is None else fast(family.native, family.bounds)
        super()._bind(family, labels, pairs)

    def observe(self, value: float, exemplar: Mapping[str, str] | None = None) -> None:
        """Record one observation (e.g. a duration in seconds). Never blocks.

        A native histogram takes NaN too, in its count only (its sum becomes NaN).

        Raises:
            ValueError: ``value`` is NaN (but on a native histogram), or the
                exemplar is invalid (a Summary has none).
            TypeError: ``value`` is not a number.
        """
        if exemplar is not None:
            self._observe_with_exemplar(value, exemplar)
            return
        if (
            value.__class__ is not float
            and (value.__class__ is not int or not -(2**63) < value < 2**63)
            or value != value
        ):
            value = number(value, "observed value")
            if math.isnan(value):
                self._observe_nan()
                return
        cells = self._cells
        slot = this_thread.slot
        try:
            cell = cells[slot]
        except KeyError:  # this thread's first write here: make its cell
            cell = cells.setdefault(slot, self._series.new_cell())
        native = self._native
        if native is None:
            cell[bisect_left(self._bounds, value)] += 1
        else:  # its native bucket too, in the cell's dict of counts by key
            low, high, table, offset, layout, classic = native
            if low < value <= high:  # one bisection finds most, and their classic bucket
                k = bisect_left(table, value)
                key = k + offset
                i = classic[k]
                cell[i if i >= 0 else bisect_left(self._bounds, value)] += 1
            else:
                key = bucket_key(value, layout)  # type: ignore[assignment]  # not NaN here
                cell[bisect_left(self._bounds, value)] += 1
            buckets = cell[-2]
            try:
                buckets[key] += 1
            except KeyError:
                buckets[key] = 1
        cell[-1] += value
        series = self._series
        if series.sink is not None:  # after the writes: a buffer reading it now sees them
            series.changed()

    def _observe_nan(self) -> None:
        """NaN: refused, but by a native histogram, which counts it in +Inf and its sum only."""
        if self._native is None:
            raise ValueError("observed value must not be NaN")
        cells = self._cells
        slot = this_thread.slot
        try:
            cell = cells[slot]  # a metric with labels missing raises here, as in observe()
        except KeyError:
            cell = cells.setdefault(slot, self._series.new_cell())
        cell[len(self._bounds)] += 1  # where client_golang's search puts NaN
        cell[-1] += math.nan
        buckets = cell[-2]
        buckets[NAN] = buckets.get(NAN, 0) + 1
        self._series.changed()

    def _observe_with_exemplar(self, value: float, exemplar: Mapping[str, str]) -> None:
        """``observe`` with an exemplar: validate both, record, keep it on its bucket."""
        if self._family.kind == "summary":
            raise ValueError("OpenMetrics has no exemplars on summaries; use a Histogram")
        found = exemplar_of(exemplar, number(value, "observed value"))
        ObservedHandle.observe(self, value)  # not self.observe: a traced one's would look again
        v = found.value  # NaN: on +Inf, where its count went
        i = bisect_left(self._bounds, v) if v == v else len(self._bounds)
        series = self._series
        series.exemplars[i] = found
        if series.sink is not None:  # a batch read the counts before the exemplar
            series.changed()

    def time(self) -> Timer:
        """Observe the seconds a block or function took (``with``, ``async with``, decorator)."""
        self._check_observable()
        return Timer(self, self._timed)

    @overload
    def __call__(self, func: F) -> F: ...
    @overload
    def __call__(self, func: None = None) -> Callable[[F], F]: ...
    def __call__(self, func: F | None = None) -> F | Callable[[F], F]:
        """Decorator (``@histogram``): observe the duration of each call."""
        timer = self.time()
        return timer if func is None else timer(func)
