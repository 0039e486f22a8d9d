"""Registries hold the metrics and collectors that an exposition shows.

`REGISTRY` is a proxy to the default registry: ``REGISTRY.set_registry(r)``
swaps what every default-registered metric and ``generate_metrics()`` use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from ._collect.read import collect_sync
from ._collect.source import RestrictedRegistry as RestrictedRegistry
from ._collect.source import behind
from ._labels import check_metric_name, escaped_forms
from ._names import escape_metric_name
from ._public import publish
from ._record.family import family_of
from ._record.traced import SOURCES
from ._samples import MetricFamily
from ._trace import require_otel
from .backends._current import current
from .backends._protocol import SupportsHealth
from .exceptions import DuplicateTimeseries

__all__ = [
    "CollectorRegistry",
    "CollectorRegistryProxy",
    "REGISTRY",
    "Registry",
    "RestrictedRegistry",
]


@runtime_checkable
class Registry(Protocol):
    """What a registry offers (`CollectorRegistry` and the `REGISTRY` proxy)."""

    @property
    def prefix(self) -> str | None:
        """Prepended, with ``_``, to the name of every metric it exposes."""
        ...

    def register(self, collector: Any) -> None:
        """Add a metric or a custom collector."""
        ...

    def unregister(self, collector: Any) -> None:
        """Remove a metric or a custom collector."""
        ...

    def collect(self) -> list[Any]:
        """The registered metric families and custom collectors, in order."""
        ...


class CollectorRegistry:
    """A set of metrics and custom collectors exposed together.

    Args:
        prefix: prepended with ``_`` to every metric name at exposition
            (custom collectors keep their names, as in pytheus).
        exemplars: ``"otel"``: counters and histograms created in this registry
            (but those given ``exemplars=False``) keep the ``trace_id`` and
            ``span_id`` of the current sampled OpenTelemetry span as exemplars
            (needs ``opentelemetry-api``; see `apytheus.metrics.Counter`).

    Examples:
        >>> from apytheus import CollectorRegistry, Counter, generate_metrics
        >>> registry = CollectorRegistry(prefix="shop")
        >>> Counter("orders", "Orders placed", registry=registry).inc()
        >>> print(generate_metrics(registry))
        # HELP shop_orders_total Orders placed
        # TYPE shop_orders_total counter
        shop_orders_total 1.0
        <BLANKLINE>
    """

    def __init__(self, prefix: str | None = None, exemplars: str | None = None) -> None:
        if prefix is not None:
            check_metric_name(prefix)
        if exemplars is not None:
            if exemplars not in SOURCES:
                raise ValueError(f"exemplars must be 'otel' or None, not {exemplars!r}")
            require_otel()
        self._prefix = prefix
        self._exemplars = exemplars
        self._lock = threading.Lock()
        self._collectors: dict[int, Any] = {}
        # every name exposed, as it is and as each escaping writes it: what it belongs to
        self._names: dict[str | tuple[str, str], Any] = {}

    @property
    def prefix(self) -> str | None:
        """The prefix given at creation."""
        return self._prefix

    @property
    def exemplars(self) -> str | None:
        """Where new counters and histograms take exemplars from (``"otel"``), or None."""
        return self._exemplars

    def register(self, collector: Any) -> None:
        """Add a metric (or a custom collector with a ``collect()`` method).

        Raises:
            DuplicateTimeseries: a registered metric already exposes one of its
                names, or one that a scraper's escaping would write alike
                (``a.b`` and ``a_b``): a `ValueError`.
            ValueError: the collector is registered already.
        """
        family = family_of(collector)
        item = family if family is not None else collector
        if family is None and not callable(getattr(collector, "collect", None)):
            raise TypeError(f"{collector!r} is neither a metric nor has a collect() method")
        with self._lock:
            if id(item) in self._collectors:
                raise ValueError(f"{collector!r} is already registered")
            names = family.sample_names(self._prefix) if family is not None else []
            keys: list[tuple[str, str | tuple[str, str]]] = []
            for n in names:
                keys.append((n, n))
                keys.extend((n, form) for form in escaped_forms(n, escape_metric_name))
            taken = [(n, k) for n, k in keys if k in self._names]
            if taken:
                name, key = taken[0]
                how = f" as {key[1]!r} under {key[0]} escaping" if isinstance(key, tuple) else ""
                raise DuplicateTimeseries(
                    {n for n, _ in taken},
                    f"duplicate metric: {name!r} is already exposed{how} by "
                    f"{self._names[key]!r}; metric names must be unique in a registry",
                )
            self._collectors[id(item)] = item
            for _, k in keys:
                self._names[k] = item
        if family is not None:
            family.attach()

    def unregister(self, collector: Any) -> None:
        """Remove a metric or custom collector (unknown ones raise `KeyError`)."""
        family = family_of(collector)
        item = family if family is not None else collector
        with self._lock:
            if self._collectors.pop(id(item), None) is None:
                raise KeyError(f"{collector!r} is not registered")
            for n in [n for n, c in self._names.items() if c is item]:
                del self._names[n]

    def collect(self) -> list[Any]:
        """The registered families and custom collectors, in registration order."""
        with self._lock:
            return list(self._collectors.values())

    def restricted_registry(self, names: Iterable[str]) -> RestrictedRegistry:
        """A view that exposes only the metrics with one of these sample names.

        What prometheus_client's ``MetricsHandler`` calls for ``?name[]=``;
        render it like any registry.

        Examples:
            >>> from apytheus import CollectorRegistry, Counter, Gauge, generate_metrics
            >>> registry = CollectorRegistry()
            >>> Counter("done", "Done", registry=registry).inc()
            >>> Gauge("busy", "Busy", registry=registry).set(2)
            >>> print(generate_metrics(registry.restricted_registry(["busy"])), end="")
            # HELP busy Busy
            # TYPE busy gauge
            busy 2.0
        """
        return RestrictedRegistry(names, self)

    def get_sample_value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """The value of one sample, or None (for tests; collects everything).

        Examples:
            >>> from apytheus import CollectorRegistry, Counter
            >>> registry = CollectorRegistry()
            >>> Counter("done", "Done", registry=registry).inc(3)
            >>> registry.get_sample_value("done_total")
            3.0
        """
        wanted = dict(labels or {})
        # OpenMetrics for the _created samples only it has; the text format for the rest,
        # since OpenMetrics leaves out a negative or NaN _sum (see build_family)
        om = name.endswith("_created")
        for family in collect_sync(self, om, extra=health_families(self)):
            for sample in family.samples:
                if sample.name == name and sample.label_dict() == wanted:
                    return sample.value
        return None

    def __repr__(self) -> str:
        if self._exemplars is not None:
            return f"CollectorRegistry(prefix={self._prefix!r}, exemplars={self._exemplars!r})"
        return f"CollectorRegistry(prefix={self._prefix!r})"


class CollectorRegistryProxy:
    """Stands for the default registry and forwards to whichever is set."""

    def __init__(self, registry: Registry | None = None) -> None:
        self._registry: Registry = registry if registry is not None else CollectorRegistry()

    def set_registry(self, registry: Registry) -> None:
        """Make ``registry`` the default one."""
        self._registry = registry

    @property
    def registry(self) -> Registry:
        """The registry currently behind the proxy."""
        return self._registry

    @property
    def prefix(self) -> str | None:
        """The current registry's prefix."""
        return self._registry.prefix

    @property
    def exemplars(self) -> str | None:
        """The current registry's automatic exemplars (see `CollectorRegistry`)."""
        found = getattr(self._registry, "exemplars", None)
        return found if isinstance(found, str) else None

    def register(self, collector: Any) -> None:
        """Register on the current registry."""
        self._registry.register(collector)

    def unregister(self, collector: Any) -> None:
        """Unregister from the current registry."""
        self._registry.unregister(collector)

    def collect(self) -> list[Any]:
        """Collect from the current registry."""
        return self._registry.collect()

    def restricted_registry(self, names: Iterable[str]) -> RestrictedRegistry:
        """See `CollectorRegistry.restricted_registry`."""
        return RestrictedRegistry(names, self)

    def get_sample_value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """See `CollectorRegistry.get_sample_value`."""
        getter = getattr(self._registry, "get_sample_value", None)
        return getter(name, labels) if getter is not None else None

    def __repr__(self) -> str:
        return f"CollectorRegistryProxy({self._registry!r})"


REGISTRY = CollectorRegistryProxy()
"""The default registry (a proxy: see `CollectorRegistryProxy.set_registry`)."""


def health_families(registry: object) -> list[MetricFamily]:
    """The backend's own health families, for the default registry (none for others)."""
    backend = current()
    if behind(registry) is not behind(REGISTRY) or not isinstance(backend, SupportsHealth):
        return []
    return backend.health_families()


publish(globals())
