"""RECORD: what a gauge does: ``inc``/``dec``/``set`` (the hot path), functions, timing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, overload

from ..backends._series import ScalarSeries, grow
from ..backends._thread_cells import this_thread
from .handle import Handle
from .timers import InProgress, Timer
from .values import either, number

F = TypeVar("F", bound=Callable[..., Any])


class GaugeHandle(Handle):
    """A gauge handle's recording methods (the public class is `apytheus.metrics.Gauge`)."""

    __slots__ = ()
    _kind = "gauge"
    _timed: ClassVar[str] = "set"  # what time() hands the seconds to

    def inc(self, amount: float = 1.0, *, value: float | None = None) -> None:
        """Add ``amount`` (may be negative; ``value=`` is pytheus' name). Never blocks."""
        if value is not None:
            amount = either(amount, value)
        if (
            amount.__class__ is not float
            and (amount.__class__ is not int or not -(2**63) < amount < 2**63)
            or amount != amount
        ):
            amount = number(amount, "gauge increment")
            if math.isnan(amount):
                raise ValueError("gauge increment must not be NaN")
        series = self._series
        try:
            cells = series.cells  # not cached: set() replaces it
        except AttributeError:  # no series: labels are missing
            self._check_observable()  # raises, naming them
            raise
        slot = this_thread.slot
        try:
            cells[slot] += amount
        except IndexError:  # this thread's first write here: make its cell
            grow(cells, slot, amount)
        if series.sink is not None:  # after the write: see ScalarSeries
            series.changed()

    def dec(self, amount: float = 1.0, *, value: float | None = None) -> None:
        """Subtract ``amount`` (``value=`` is pytheus' name). Never blocks."""
        if value is not None:
            amount = either(amount, value)
        if amount.__class__ is not float:
            amount = number(amount, "gauge decrement")
        if amount != amount:
            raise ValueError("gauge decrement must not be NaN")
        self.inc(-amount)

    def set(self, value: float) -> None:
        """Set the value. Never blocks."""
        if value.__class__ is not float and (
            value.__class__ is not int or not -(2**63) < value < 2**63
        ):
            value = number(value, "gauge value")
        series: ScalarSeries | None = self._series
        if series is None:
            self._check_observable()
        else:  # ScalarSeries.set, inlined: this is a hot path
            series.cells = [value]  # new cells: no thread has written them yet
            if series.sink is not None:
                series.changed()

    def set_to_current_time(self) -> None:
        """Set the value to the current Unix time in seconds."""
        self.set(time.time())

    def set_function(self, fn: Callable[[], float]) -> None:
        """Compute the value by calling ``fn`` at every collection (this process only)."""
        if not callable(fn):
            raise TypeError(f"set_function needs a callable, not {type(fn).__name__}")
        series: ScalarSeries = self._check_observable()
        series.function = fn
        series.changed()  # a buffer then reads it at every batch

    def track_inprogress(self) -> InProgress:
        """Add 1 while a block or function runs (``with``, ``async with``, decorator)."""
        self._check_observable()
        return InProgress(self.inc)

    def time(self) -> Timer:
        """Set the gauge to the seconds a block or function took."""
        self._check_observable()
        return Timer(self, self._timed)

    @overload
    def __call__(self, func: F) -> F: ...
    @overload
    def __call__(self, func: None = None, track_inprogress: bool = False) -> Callable[[F], F]: ...
    def __call__(
        self, func: F | None = None, track_inprogress: bool = False
    ) -> F | Callable[[F], F]:
        """Decorator: ``@gauge`` times the call, ``@gauge(track_inprogress=True)`` counts it."""
        helper = self.track_inprogress() if track_inprogress else self.time()
        return helper if func is None else helper(func)
