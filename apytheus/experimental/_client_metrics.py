"""prometheus_client's signatures for creating metrics and registries, over apytheus' classes.

`apytheus.experimental.compatibility.patch_client` puts each class of this
module in place of prometheus_client's class of the same name. Their objects
are apytheus objects, so values go to whichever backend is selected (the Redis
backend included).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .. import metrics as base
from .. import registry as base_registry
from .._record.timers import ExceptionCounter, Timer
from ..registry import REGISTRY, Registry

if TYPE_CHECKING:
    from typing_extensions import Self

INF = math.inf
DEFAULT_BUCKETS: tuple[float, ...] = (
    *(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75),
    *(1.0, 2.5, 5.0, 7.5, 10.0, INF),
)
"""prometheus_client's default buckets (apytheus' own default has fewer)."""

CLIENT_DEFAULTS: list[object] = []
"""prometheus_client's own default registries while patched: they stand for `REGISTRY`.

prometheus_client binds its ``REGISTRY`` as a default argument in many places
(``MetricsHandler``, ``start_wsgi_server``, collectors), which no patch can
reach; the adapters read that object as apytheus' default registry.
"""


# -- registries -----------------------------------------------------------
def as_registry(registry: object) -> Registry:
    """The apytheus registry to render for ``registry``.

    A registry of prometheus_client's own (or any object with ``collect()``)
    is wrapped, so the families it collects are rendered too.
    """
    if any(registry is r for r in CLIENT_DEFAULTS):
        return REGISTRY
    if isinstance(registry, Registry):
        return registry
    behind, names = getattr(registry, "_registry", None), getattr(registry, "_name_set", None)
    if any(behind is r for r in CLIENT_DEFAULTS) and isinstance(names, (set, frozenset)):
        # prometheus_client's restricted_registry() of its default registry (``?name[]=``)
        return base_registry.RestrictedRegistry(names, REGISTRY)
    if callable(getattr(registry, "collect", None)):
        wrapper = base_registry.CollectorRegistry()
        wrapper.register(registry)
        return wrapper
    raise TypeError(f"{registry!r} is not a registry")


def metric_registry(registry: object) -> Registry | None:
    """Where a new metric registers (``None``: nowhere)."""
    if registry is None:
        return None
    if any(registry is r for r in CLIENT_DEFAULTS):
        return REGISTRY
    if isinstance(registry, Registry):
        return registry
    raise TypeError(
        f"{registry!r} is not an apytheus registry: create registries after patch_client(), "
        "when prometheus_client.CollectorRegistry is apytheus' one"
    )


class CollectorRegistry(base_registry.CollectorRegistry):
    """prometheus_client's ``CollectorRegistry`` signature over apytheus' registry.

    ``auto_describe`` and ``support_collectors_without_names`` are accepted and
    ignored: apytheus checks metric names when they register and never calls
    ``describe()``. ``target_info`` is exposed as ``target_info``, as there.
    """

    def __init__(
        self,
        auto_describe: bool = False,
        target_info: Mapping[str, str] | None = None,
        support_collectors_without_names: bool = False,
    ) -> None:
        super().__init__()
        self._target: base.Info | None = None
        self._target_labels: dict[str, str] | None = None
        self.set_target_info(target_info)

    def set_target_info(self, labels: Mapping[str, str] | None) -> None:
        """Expose ``labels`` as the ``target_info`` metric (None or empty: remove it)."""
        if self._target is not None:
            self.unregister(self._target)
            self._target, self._target_labels = None, None
        if labels:
            target = base.Info("target", "Target metadata", registry=self)
            target.info(labels)
            self._target, self._target_labels = target, dict(labels)

    def get_target_info(self) -> dict[str, str] | None:
        """The labels of ``target_info``, or None."""
        return None if self._target_labels is None else dict(self._target_labels)


# -- metrics --------------------------------------------------------------
def full_name(kind: str, name: str, namespace: str, subsystem: str, unit: str) -> str:
    """``namespace_subsystem_name_unit``, as prometheus_client joins them."""
    if not name:
        raise ValueError("Metric name should not be empty")
    full = "".join(f"{part}_" for part in (namespace, subsystem) if part) + name
    if kind == "counter" and full.endswith("_total"):
        full = full[:-6]
    if unit and not full.endswith("_" + unit):
        full += "_" + unit
    if unit and kind in ("info", "stateset"):
        raise ValueError(f"Metric name is of a type that cannot have a unit: {full}")
    return full


def _names(labelnames: Iterable[str]) -> Sequence[str]:
    """Label names as a sequence (a string stays one, so apytheus refuses it clearly)."""
    return labelnames if isinstance(labelnames, str) else tuple(labelnames)


def _text(value: object) -> str:
    """A label value as prometheus_client makes it: ``str(value)``."""
    return value if type(value) is str else str(value)


def _texts(
    values: tuple[object, ...], kwargs: dict[str, object]
) -> tuple[list[str], dict[str, str]]:
    """Label values through ``str()``, as prometheus_client takes them."""
    if values and kwargs:
        raise ValueError("Can't pass both *args and **kwargs")
    return [_text(v) for v in values], {k: _text(v) for k, v in kwargs.items()}


class _ClientLabels:
    """``labels()`` as prometheus_client's: any values, turned into text."""

    __slots__ = ()

    def labels(self, *labelvalues: object, **labelkwargs: object) -> Self:
        """The child for these label values (in declared order, or as keywords)."""
        args, kwargs = _texts(labelvalues, labelkwargs)
        return super().labels(*args, **kwargs)  # type: ignore[misc, no-any-return]

    def remove(self, *labelvalues: object, **labelkwargs: object) -> None:
        """Stop exposing the series of these label values (turned into text as ``labels``)."""
        args, kwargs = _texts(labelvalues, labelkwargs)
        super().remove(*args, **kwargs)  # type: ignore[misc]


class _ClientTimer:
    """``time()`` as prometheus_client's: labels may come inside the block."""

    __slots__ = ()
    _timed: str

    def time(self) -> Timer:
        """Time a block; ``t.labels(...)`` inside it picks the child (checked at the end)."""
        return Timer(self, self._timed)


class Counter(_ClientLabels, base.Counter):
    """prometheus_client's ``Counter`` signature over apytheus' `Counter`."""

    __slots__ = ()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: object = REGISTRY,
    ) -> None:
        full = full_name("counter", name, namespace, subsystem, unit)
        registry = metric_registry(registry)
        super().__init__(full, documentation, _names(labelnames), None, registry, unit=unit)

    def count_exceptions(
        self, exception: type[BaseException] | tuple[type[BaseException], ...] = Exception
    ) -> ExceptionCounter:
        """Count the exceptions of type ``exception`` leaving a block or function."""
        return super().count_exceptions(exception)


class Gauge(_ClientLabels, _ClientTimer, base.Gauge):
    """prometheus_client's ``Gauge`` signature over apytheus' `Gauge`.

    ``multiprocess_mode`` takes prometheus_client's modes, which apytheus has
    under the same names. As there, the default is ``all``: on a shared
    backend, one series per worker, with a ``worker`` label. A gauge that
    declares a ``worker`` label of its own gets ``sum`` unless a mode is given.
    """

    __slots__ = ()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: object = REGISTRY,
        multiprocess_mode: str | None = None,
    ) -> None:
        names = _names(labelnames)
        if multiprocess_mode is None:
            multiprocess_mode = "sum" if "worker" in names else "all"
        super().__init__(
            full_name("gauge", name, namespace, subsystem, unit),
            documentation,
            names,
            None,
            metric_registry(registry),
            multiprocess_mode,
            unit=unit,
        )


def _client_buckets(buckets: Iterable[float | str]) -> list[float]:
    """prometheus_client's bucket rules: numbers or numeric strings, sorted, ``+Inf`` added."""
    bounds = [float(b) for b in buckets]
    if bounds != sorted(bounds):
        raise ValueError("Buckets not in sorted order")
    if bounds and bounds[-1] != INF:
        bounds.append(INF)
    if len(bounds) < 2:
        raise ValueError("Must have at least two buckets")
    return bounds


class Histogram(_ClientLabels, _ClientTimer, base.Histogram):
    """prometheus_client's ``Histogram`` signature (and default buckets) over apytheus'."""

    __slots__ = ()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: object = REGISTRY,
        buckets: Iterable[float | str] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(
            full_name("histogram", name, namespace, subsystem, unit),
            documentation,
            _names(labelnames),
            None,
            metric_registry(registry),
            _client_buckets(buckets),
            unit=unit,
        )


class Summary(_ClientLabels, _ClientTimer, base.Summary):
    """prometheus_client's ``Summary`` signature over apytheus' `Summary` (no quantiles)."""

    __slots__ = ()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: object = REGISTRY,
    ) -> None:
        full = full_name("summary", name, namespace, subsystem, unit)
        registry = metric_registry(registry)
        super().__init__(full, documentation, _names(labelnames), None, registry, unit=unit)


class Info(_ClientLabels, base.Info):
    """prometheus_client's ``Info`` signature over apytheus' `Info`.

    As in prometheus_client, ``_info`` is always appended: ``Info("build_info", …)``
    is exposed as ``build_info_info`` (apytheus' own `Info` would not repeat it).
    """

    __slots__ = ()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: object = REGISTRY,
    ) -> None:
        full = full_name("info", name, namespace, subsystem, unit)
        super().__init__(full, documentation, _names(labelnames), None, metric_registry(registry))

    @classmethod
    def _exposed_name(cls, name: str) -> str:
        """The name as given: unlike apytheus' `Info`, a trailing ``_info`` stays."""
        return name


class Enum(_ClientLabels, base.Enum):
    """prometheus_client's ``Enum`` signature over apytheus' `Enum` (the first state is set)."""

    __slots__ = ()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: object = REGISTRY,
        states: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            full_name("stateset", name, namespace, subsystem, unit),
            documentation,
            _names(labelnames),
            None,
            metric_registry(registry),
            states or (),
        )
