"""STORE for one process: the series' own cells are the values."""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from .._labels import LabelSet
from ._protocol import MetricSpec, Series

__all__ = ["InProcessBackend", "SingleProcessBackend"]


class InProcessBackend:
    """Keep values in this process (the default backend).

    Nothing to start or stop; `collect` reads the series' cells directly.

    Args:
        config: accepted for symmetry with other backends; no option is used.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        self._lock = threading.Lock()
        self._series: weakref.WeakKeyDictionary[MetricSpec, dict[LabelSet, Series]] = (
            weakref.WeakKeyDictionary()
        )
        # metrics that keep their series themselves (see `share`): no entry here per series
        self._shared: weakref.WeakKeyDictionary[MetricSpec, Mapping[Any, Series]] = (
            weakref.WeakKeyDictionary()
        )

    def attach(self, metric: MetricSpec, series: Series) -> None:
        """Track ``series`` as part of ``metric``."""
        with self._lock:
            self._series.setdefault(metric, {})[series.labels] = series

    def share(self, metric: MetricSpec, series: Mapping[Any, Series]) -> None:
        """Read the series of ``metric`` from ``series``, which its owner keeps up to date.

        The series' metric (its family) adds and removes them there itself,
        so this backend keeps nothing of its own per series.
        """
        with self._lock:
            self._shared[metric] = series
            self._series.pop(metric, None)

    def detach(self, metric: MetricSpec, labels: LabelSet | None) -> None:
        """Forget one series, or every series of ``metric``."""
        with self._lock:
            if labels is None:
                self._shared.pop(metric, None)  # a shared one: its owner removes its series
            known = self._series.get(metric)
            if known is None:
                return
            if labels is None:
                known.clear()
            else:
                known.pop(labels, None)

    def collect(self, metrics: Sequence[MetricSpec]) -> dict[MetricSpec, list[Series]]:
        """Return the series of ``metrics`` (no I/O)."""
        with self._lock:
            shared, own = self._shared, self._series
            # list() of a dict's values runs in C: a shared one cannot change meanwhile
            return {m: list((shared.get(m) or own.get(m) or {}).values()) for m in metrics}

    async def acollect(self, metrics: Sequence[MetricSpec]) -> dict[MetricSpec, list[Series]]:
        """Same as `collect`: nothing here can block."""
        return self.collect(metrics)

    async def flush(self) -> None:
        """Nothing to flush: values are already where they are read."""

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """A context with nothing to run."""
        return _nothing()

    def __repr__(self) -> str:
        return "InProcessBackend()"


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


SingleProcessBackend = InProcessBackend
"""pytheus' name for the in-process backend."""
