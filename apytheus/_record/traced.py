"""RECORD: counters and histograms that take the current span's ids as exemplars (opt-in).

``Counter(..., exemplars="otel")``, ``Histogram(..., exemplars="otel")``, or any of
them in a ``CollectorRegistry(exemplars="otel")``: such a metric (and its children)
is of a subclass made here, whose ``inc`` / ``observe`` adds the ids of the current
sampled OpenTelemetry span to the series' exemplar. The classes of metrics that did
not opt in are untouched, so their record path costs exactly what it did.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from .._samples import Exemplar
from .._trace import require_otel, span_labels
from .counter import CounterHandle
from .observe import ObservedHandle

SOURCES = ("otel",)
"""What ``exemplars=`` may name: where automatic exemplars come from."""


class TracedCounter(CounterHandle):
    """``inc`` also keeps the current sampled span's ids; an ``exemplar=`` given wins."""

    __slots__ = ()

    def inc(
        self,
        amount: float = 1.0,
        exemplar: Mapping[str, str] | None = None,
        *,
        value: float | None = None,
    ) -> None:
        """See `apytheus.metrics.Counter.inc`."""
        labels = span_labels() if exemplar is None else None
        CounterHandle.inc(self, amount, exemplar, value=value)  # checks, records
        if labels is not None:
            given = amount if value is None else value
            series = self._series
            series.exemplar = Exemplar(labels, float(given), time.time())
            if series.sink is not None:  # a batch read the count before the exemplar
                series.changed()


class TracedObserved(ObservedHandle):
    """``observe`` also keeps the current sampled span's ids on the value's bucket."""

    __slots__ = ()

    def observe(self, value: float, exemplar: Mapping[str, str] | None = None) -> None:
        """See `apytheus.metrics.Histogram.observe`."""
        labels = span_labels() if exemplar is None else None
        ObservedHandle.observe(self, value, exemplar)  # checks, records
        if labels is not None:
            v = float(value)
            bounds = self._bounds
            i = bisect_left(bounds, v) if v == v else len(bounds)  # NaN: on +Inf
            series = self._series
            series.exemplars[i] = Exemplar(labels, v, time.time())
            if series.sink is not None:  # a batch read the counts before the exemplar
                series.changed()


_made: dict[type[Any], type[Any]] = {}


def traced_class(cls: type[Any]) -> type[Any]:
    """The subclass of a Counter or Histogram class (a user's subclass too) that traces."""
    found = _made.get(cls)
    if found is None:
        mixin = TracedCounter if issubclass(cls, CounterHandle) else TracedObserved
        namespace = {"__slots__": (), "__module__": cls.__module__}
        namespace["__qualname__"] = cls.__qualname__  # repr() and errors name it as before
        found = _made[cls] = type(cls.__name__, (mixin, cls), namespace)
    return found


def exemplar_source(given: object, registry: Any, kind: str) -> str | None:
    """What a new counter or histogram takes exemplars from (None: only what is given).

    ``given`` is the metric's ``exemplars=``: None follows the registry, False is off.

    Raises:
        ValueError: an unknown source, or one on a summary.
        ImportError: ``"otel"`` without ``opentelemetry-api`` installed.
    """
    if given is None:
        found = getattr(registry, "exemplars", None) if registry is not None else None
        source = found if kind in ("counter", "histogram") else None
    elif given is False:
        return None
    else:
        source = given
    if source is None:
        return None
    if not isinstance(source, str) or source not in SOURCES:
        raise ValueError(f"exemplars must be 'otel', False or None, not {source!r}")
    if kind not in ("counter", "histogram"):
        raise ValueError("OpenMetrics has exemplars on counters and histograms only")
    require_otel()
    return source
