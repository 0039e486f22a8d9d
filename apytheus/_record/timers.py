"""Timers, in-progress trackers and exception counters for def and async def.

Each helper is one object that works as ``with``, ``async with`` and as a
decorator. Decorating an ``async def`` returns an ``async def`` that measures
the awaited body. The measurement is taken in ``finally``, so a body that
raises or is cancelled is still measured, and an in-progress gauge always
comes back down.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

clock: Callable[[], float] = time.perf_counter
"""The clock every timer reads (seconds, monotonic)."""


class Instrument:
    """Base of the helpers: subclasses define ``_start`` and ``_stop``.

    A decorated function keeps its measurement in local state, so it is
    reentrant and safe across threads and tasks. When used with ``with``,
    the state of the open block is kept on the object: use one object per
    block (``with h.time():`` creates a new one each time).
    """

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: list[Any] = []

    def _start(self) -> Any:
        raise NotImplementedError

    def _stop(self, token: Any, exc: BaseException | None) -> None:
        raise NotImplementedError

    def __enter__(self) -> Instrument:
        self._open.append(self._start())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop(self._open.pop(), exc)

    async def __aenter__(self) -> Instrument:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        """Decorate ``func`` (plain or ``async def``)."""
        start, stop = self._start, self._stop
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = start()
                error: BaseException | None = None
                try:
                    return await func(*args, **kwargs)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    stop(token, error)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = start()
            error: BaseException | None = None
            try:
                return func(*args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                stop(token, error)

        return cast(F, wrapper)


class Timer(Instrument):
    """Measure elapsed seconds and hand them to ``metric.<method>`` (``observe`` or ``set``).

    After a ``with`` block, ``duration`` holds the seconds it took (as in
    prometheus_client). ``labels(...)`` inside the block picks the labeled
    child that the measurement goes to, for a block that learns its labels
    as it runs.
    """

    __slots__ = ("_metric", "_method", "duration")

    def __init__(self, metric: Any, method: str) -> None:
        super().__init__()
        self._metric = metric
        self._method = method
        self.duration: float | None = None

    def labels(self, *args: Any, **kwargs: Any) -> None:
        """Send the measurement to ``metric.labels(*args, **kwargs)`` instead."""
        self._metric = self._metric.labels(*args, **kwargs)

    def _start(self) -> float:
        return clock()

    def _stop(self, token: float, exc: BaseException | None) -> None:
        self.duration = duration = max(clock() - token, 0.0)
        getattr(self._metric, self._method)(duration)

    def __enter__(self) -> Timer:
        super().__enter__()
        return self

    async def __aenter__(self) -> Timer:
        return self.__enter__()


class InProgress(Instrument):
    """Add one on entry and take it away on exit, whatever the exit."""

    __slots__ = ("_add",)

    def __init__(self, add: Callable[[float], None]) -> None:
        super().__init__()
        self._add = add

    def _start(self) -> None:
        self._add(1.0)

    def _stop(self, token: None, exc: BaseException | None) -> None:
        self._add(-1.0)


class ExceptionCounter(Instrument):
    """Count exceptions of the given types that leave the block (they are re-raised)."""

    __slots__ = ("_count", "_types")

    def __init__(
        self,
        count: Callable[[], None],
        exceptions: type[BaseException] | tuple[type[BaseException], ...],
    ) -> None:
        super().__init__()
        self._count = count
        self._types = exceptions

    def _start(self) -> None:
        return None

    def _stop(self, token: None, exc: BaseException | None) -> None:
        if exc is not None and isinstance(exc, self._types):
            self._count()
