"""RECORD: what a histogram or summary does: ``observe`` (the hot path) and timing."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Mapping
from threading import get_ident
from typing import Any, ClassVar, TypeVar, overload

from .._labels import LabelPairs
from .family import Family
from .handle import Handle
from .timers import Timer
from .values import exemplar_of, number

F = TypeVar("F", bound=Callable[..., Any])


class ObservedHandle(Handle):
    """Histogram and Summary handles: ``observe`` (the hot path), ``time``, the decorator."""

    __slots__ = ("_bounds",)
    _bounds: tuple[float, ...]
    _timed: ClassVar[str] = "observe"  # what time() hands the seconds to

    def _bind(self, family: Family, labels: dict[str, str], pairs: LabelPairs) -> None:
        self._bounds = family.bounds
        super()._bind(family, labels, pairs)

    def observe(self, value: float, exemplar: Mapping[str, str] | None = None) -> None:
        """Record one observation (e.g. a duration in seconds). Never blocks.

        Raises:
            ValueError: ``value`` is NaN, or the exemplar is invalid (a Summary has none).
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
                raise ValueError("observed value must not be NaN")
        cells = self._cells
        tid = get_ident()
        try:
            cell = cells[tid]
        except KeyError:
            cell = cells.setdefault(tid, self._series.new_cell())
        i = bisect_left(self._bounds, value)
        cell[i] += 1
        cell[-1] += value
        series = self._series  # after the write: a buffer reading it now sees it
        if series.sink is not None:
            series.changed()

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
