"""STORE for one process: the series' own cells are the values."""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from .._labels import LabelSet
from ._protocol import MetricSpec, Series
from ._thread_cells import fold

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

    def attach(self, metric: MetricSpec, series: Series) -> None:
        """Track ``series`` as part of ``metric``."""
        with self._lock:
            self._series.setdefault(metric, {})[series.labels] = series

    def detach(self, metric: MetricSpec, labels: LabelSet | None) -> None:
        """Forget one series, or every series of ``metric``."""
        with self._lock:
            known = self._series.get(metric)
            if known is None:
                return
            if labels is None:
                known.clear()
            else:
                known.pop(labels, None)

    def collect(self, metrics: Sequence[MetricSpec]) -> dict[MetricSpec, list[Series]]:
        """Return the series of ``metrics`` (no I/O), the cells of ended threads folded."""
        fold()
        with self._lock:
            return {m: list(self._series.get(m, {}).values()) for m in metrics}

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
