"""STORE: the Backend Protocol, its optional capabilities, and the metric spec backends get.

A backend is anything of `Backend`'s shape. What only some backends can do is
a small Protocol of its own, checked with ``isinstance`` by the callers:
`SupportsAdopt`, `SupportsClose`, `SupportsHealth`, `SupportsShare`,
`SupportsValuesOnly`, `SupportsWorker`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._labels import LabelSet
from .._native import Layout
from .._samples import MetricFamily
from ._series import HistogramSeries, InfoSeries, ScalarSeries

Series = ScalarSeries | HistogramSeries | InfoSeries


@dataclass(frozen=True, eq=False)
class MetricSpec:
    """What a backend knows of a metric: its name, kind and storage options.

    Compared by identity: two registries may each hold a metric of the same
    name, and they must not share values.

    Attributes:
        name: the metric name, with the registry prefix it had when created.
        kind: ``counter``, ``gauge``, ``histogram``, ``summary``, ``info`` or ``stateset``.
        label_names: the declared label names, in order.
        bounds: histogram upper bounds without ``+Inf`` (empty for other kinds).
        mode: the gauge's ``multiprocess_mode`` (``sum`` for other kinds).
        native: a native histogram's bucket layout (None for every other metric).
    """

    name: str
    kind: str
    label_names: tuple[str, ...] = ()
    bounds: tuple[float, ...] = ()
    mode: str = "sum"
    native: Layout | None = None


@runtime_checkable
class Backend(Protocol):
    """Where recorded values go between a metric and the exposition.

    Recording never calls the backend: metrics write into the per-thread
    cells of their series (no I/O, no await), and the backend *pulls* from
    those series. A backend is told once about each new series (``attach``),
    may push deltas somewhere in ``flush``, and returns every series of the
    asked metrics in ``collect``/``acollect`` (including series that other
    processes wrote, for a shared store). Implement this shape; no base class
    is needed.
    """

    def attach(self, metric: MetricSpec, series: Series) -> None:
        """Start tracking a new series (sync, cheap, no I/O)."""
        ...

    def detach(self, metric: MetricSpec, labels: LabelSet | None) -> None:
        """Forget one series of ``metric``, or all of them when ``labels`` is None."""
        ...

    def collect(self, metrics: Sequence[MetricSpec]) -> Mapping[MetricSpec, Sequence[Series]]:
        """Return every series of ``metrics`` (blocking; for sync callers)."""
        ...

    async def acollect(
        self, metrics: Sequence[MetricSpec]
    ) -> Mapping[MetricSpec, Sequence[Series]]:
        """Return every series of ``metrics`` without blocking the event loop."""
        ...

    async def flush(self) -> None:
        """Send what was recorded since the last flush to the store, if any."""
        ...

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Run background work (a flusher) for the duration of the context."""
        ...


@runtime_checkable
class SupportsAdopt(Protocol):
    """A backend that can continue the one it replaces (same store: nothing sent twice)."""

    def adopt(self, previous: object) -> None:
        """Take over from ``previous`` (and close it) when `load_backend` switches."""
        ...


@runtime_checkable
class SupportsClose(Protocol):
    """A backend with something to release (a connection, a thread) when replaced."""

    def close(self) -> None:
        """Stop background work and release resources (a last flush, if it has one)."""
        ...


@runtime_checkable
class SupportsHealth(Protocol):
    """A backend with health metrics of its own, shown with the default registry."""

    def health_families(self) -> list[MetricFamily]:
        """The backend's health as metric families (flush errors, say)."""
        ...


@runtime_checkable
class SupportsShare(Protocol):
    """A backend that reads a metric's series from the metric's own mapping of them.

    Instead of `Backend.attach` and `Backend.detach` per series, the metric
    hands over, once, the live mapping where it keeps its series (it adds and
    removes them there itself). The in-process backend does this: one entry
    per series fewer to keep (about 30 to 50 bytes each).
    """

    def share(self, metric: MetricSpec, series: Mapping[Any, Series]) -> None:
        """Read the series of ``metric`` from ``series`` from now on (its values)."""
        ...


@runtime_checkable
class SupportsValuesOnly(Protocol):
    """A backend that can collect faster when creation times are not needed.

    The text format 0.0.4 shows no ``_created`` samples: for it, collection
    calls these instead of `Backend.collect` / `Backend.acollect` (a Redis
    backend then reads one hash per metric instead of two).
    """

    def collect_values(
        self, metrics: Sequence[MetricSpec]
    ) -> Mapping[MetricSpec, Sequence[Series]]:
        """`Backend.collect`, where each series' ``created`` may be left 0."""
        ...

    async def acollect_values(
        self, metrics: Sequence[MetricSpec]
    ) -> Mapping[MetricSpec, Sequence[Series]]:
        """`Backend.acollect`, where each series' ``created`` may be left 0."""
        ...


@runtime_checkable
class SupportsWorker(Protocol):
    """A shared backend that tells this process apart from the other workers."""

    @property
    def worker(self) -> str:
        """This process' worker id (the ``worker`` label of per-worker series)."""
        ...
