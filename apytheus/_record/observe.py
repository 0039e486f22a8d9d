"""RECORD: what a histogram or summary does: ``observe`` (the hot path) and timing."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping
from threading import get_ident
from typing import Any, ClassVar, TypeVar, overload

from .._labels import LabelPairs
from .._native import NEGATIVE, ZERO, Layout, bucket_index
from .family import Family
from .handle import Handle
from .timers import Timer
from .values import exemplar_of, number

F = TypeVar("F", bound=Callable[..., Any])


class ObservedHandle(Handle):
    """Histogram and Summary handles: ``observe`` (the hot path), ``time``, the decorator."""

    __slots__ = ("_bounds", "_native")
    _bounds: tuple[float, ...]
    _native: Layout | None  # a native histogram's bucket layout
    _timed: ClassVar[str] = "observe"  # what time() hands the seconds to

    def _bind(self, family: Family, labels: dict[str, str], pairs: LabelPairs) -> None:
        self._bounds = family.bounds
        self._native = family.native
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
            if math.isnan(value) and self._native is None:
                raise ValueError("observed value must not be NaN")
        cells = self._cells
        tid = get_ident()
        try:
            cell = cells[tid]
        except KeyError:
            cell = cells.setdefault(tid, self._series.new_cell())
        bounds = self._bounds
        # NaN (native histograms only) counts in +Inf, as client_golang's search puts it
        i = bisect_left(bounds, value) if value == value else len(bounds)
        cell[i] += 1
        cell[-1] += value
        native = self._native
        if native is not None:
            self._observe_native(value, native, tid)
        series = self._series  # after the write: a buffer reading it now sees it
        if series.sink is not None:
            series.changed()

    def _observe_native(self, value: float, native: Layout, tid: int) -> None:
        """Count ``value`` in its native bucket too (this thread's dict of counts by key)."""
        cells = self._series.native
        buckets = cells.get(tid)
        if buckets is None:
            buckets = cells.setdefault(tid, {})
        magnitude = -value if value < 0 else value
        if magnitude <= native.zero_threshold:
            key = ZERO
        elif magnitude == magnitude:
            key = bucket_index(magnitude, native.schema, native.table)
            if value < 0:
                key += NEGATIVE
        else:
            return  # NaN: in the count only
        buckets[key] = buckets.get(key, 0) + 1

    def _observe_with_exemplar(self, value: float, exemplar: Mapping[str, str]) -> None:
        """``observe`` with an exemplar: validate both, record, keep it on its bucket."""
        if self._family.kind == "summary":
            raise ValueError("OpenMetrics has no exemplars on summaries; use a Histogram")
        found = exemplar_of(exemplar, number(value, "observed value"))
        self.observe(value)
        self._series.exemplars[bisect_left(self._bounds, found.value)] = found

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
