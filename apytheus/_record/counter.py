"""RECORD: what a counter does: ``inc`` (the hot path), ``reset``, counting exceptions."""

from __future__ import annotations

import reprlib
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from ..backends._series import ScalarSeries, grow
from ..backends._thread_cells import this_thread
from .handle import Handle
from .timers import ExceptionCounter
from .values import either, exemplar_of, number

F = TypeVar("F", bound=Callable[..., Any])


class CounterHandle(Handle):
    """A counter handle's recording methods (the public class is `apytheus.metrics.Counter`)."""

    __slots__ = ()
    _kind = "counter"

    def inc(
        self,
        amount: float = 1.0,
        exemplar: Mapping[str, str] | None = None,
        *,
        value: float | None = None,
    ) -> None:
        """Add ``amount`` (>= 0, default 1). Never blocks.

        Args:
            amount: how much to add.
            exemplar: labels (e.g. a trace id) shown with the value in OpenMetrics.
            value: pytheus' name for ``amount`` (``inc(value=2)``).

        Raises:
            ValueError: ``amount`` is negative or NaN, or the exemplar is invalid.
            TypeError: ``amount`` is not a number, or is not 1 while ``value`` is given.
            UnobservableMetricException: some labels have no value.
        """
        if exemplar is not None or value is not None:
            self._inc_extras(amount if value is None else either(amount, value), exemplar)
            return
        # Floats and ints that fit a float's range take the fast path; anything
        # else is converted (and checked) first. The bounds are folded constants.
        if (
            amount.__class__ is not float
            and (amount.__class__ is not int or not -(2**63) < amount < 2**63)
            or not amount >= 0
        ):
            amount = number(amount, "counter increment")
            if not amount >= 0:
                raise ValueError(f"counter increment must be >= 0, got {amount}")
        cells = self._cells
        slot = this_thread.slot  # this thread's alone while it lives: see _thread_cells
        try:
            cells[slot] += amount
        except IndexError:  # this thread's first write here: make its cell
            grow(cells, slot, amount)
        series = self._series  # after the write: a buffer reading it now sees the new total
        if series.sink is not None:
            series.changed()

    def _inc_extras(self, amount: float, exemplar: Mapping[str, str] | None) -> None:
        """``inc`` with an exemplar or pytheus' ``value=``: validate all, then record."""
        found = exemplar_of(exemplar, number(amount, "counter increment")) if exemplar else None
        CounterHandle.inc(self, amount)  # not self.inc: a traced counter's would look again
        if found is not None:
            series = self._series
            series.exemplar = found
            if series.sink is not None:  # a batch read the count before the exemplar
                series.changed()

    def reset(self) -> None:
        """Start this series again from 0, with a new created time (prometheus_client's).

        For a process whose logical job restarts without the process restarting.
        An ``inc()`` racing with the reset on another thread counts as made
        before it. On a shared backend this resets this worker's contribution:
        the shared total drops by what this worker had added (Prometheus sees a
        counter reset) and the shared ``_created`` is left as it was.

        Raises:
            UnobservableMetricException: some labels have no value.
        """
        series: ScalarSeries = self._check_observable()
        family = self._family
        with family.lock:
            old = series.cells
            cells: list[float] = []
            # Handles cache the cells of their series: point each one at the new ones
            # (the series' child, and the metric itself when its defaults fill the labels).
            root = family.root() if family.root is not None else None
            for view in (family.handles.get(series.labels.values), root):
                if view is not None and view._cells is old:
                    view._cells = cells
            series.cells = cells
            series.created = time.time()
            series.exemplar = None
        series.changed()

    def count_exceptions(
        self, exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception
    ) -> ExceptionCounter:
        """Count exceptions of the given types raised in a block or function (re-raised).

        Works as ``with``, ``async with`` and as a decorator of ``def`` / ``async def``.
        """
        types = exceptions if isinstance(exceptions, tuple) else (exceptions,)
        if not types or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in types
        ):
            raise TypeError(
                f"count_exceptions takes an exception class or a tuple of them, "
                f"not {reprlib.repr(exceptions)}"
            )
        self._check_observable()
        return ExceptionCounter(self.inc, exceptions)

    @overload
    def __call__(self, func: F) -> F: ...
    @overload
    def __call__(
        self,
        func: None = None,
        exceptions: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    ) -> Callable[[F], F]: ...
    def __call__(
        self,
        func: F | None = None,
        exceptions: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    ) -> F | Callable[[F], F]:
        """Decorator (``@counter`` or ``@counter(exceptions=...)``): count exceptions."""
        counter = self.count_exceptions(exceptions or Exception)
        return counter if func is None else counter(func)
