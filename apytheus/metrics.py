"""RECORD: Counter, Gauge, Histogram, Summary, Info, Enum and custom collectors.

A metric object is a *handle* (see ``apytheus._record.handle``): the metric
itself, or a view on it with some labels filled in (``labels()`` returns
one). Recording on a handle whose labels are complete writes into the
series' per-thread cell: no lock, no I/O, no await, on every backend. The
record methods below check their value inline, with one class test for the
common case, and call `number` only for anything else: they are the hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ._collect.custom import CustomCollector as CustomCollector
from ._labels import check_label_dict, check_label_names
from ._native import layout
from ._public import publish
from ._record.counter import CounterHandle
from ._record.family import Family
from ._record.gauge import GaugeHandle
from ._record.handle import Handle
from ._record.observe import ObservedHandle
from ._record.traced import exemplar_source, traced_class
from ._record.values import (
    DEFAULT_BUCKETS,
    MULTIPROCESS_MODES,
    check_buckets,
    check_states,
    check_unit,
    with_unit,
)
from .backends._series import InfoSeries, ScalarSeries
from .exceptions import LabelValidationException
from .registry import REGISTRY, Registry

__all__ = [
    "Counter",
    "CustomCollector",
    "DEFAULT_BUCKETS",
    "Enum",
    "Gauge",
    "Histogram",
    "Info",
    "Summary",
]


class _Metric(Handle):
    """A metric as created: registers its family, and binds itself to it."""

    __slots__ = ()

    def __init__(
        self,
        name: str,
        description: str,
        required_labels: Sequence[str] | None = None,
        default_labels: Mapping[str, str] | None = None,
        registry: Registry | None = REGISTRY,
        *,
        max_series: int | None = None,
        unit: str = "",
    ) -> None:
        self._setup(
            name, description, required_labels, default_labels, registry, max_series, unit=unit
        )

    def _setup(
        self,
        name: str,
        description: str,
        required_labels: Sequence[str] | None,
        default_labels: Mapping[str, str] | None,
        registry: Registry | None,
        max_series: int | None,
        **options: Any,
    ) -> None:
        """Make the family (name, labels and ``options`` checked) and register it.

        A ``unit`` is appended to the name as ``_<unit>`` unless the name ends with it.
        With automatic ``exemplars`` (its own, or its registry's), the metric becomes
        of a subclass that takes them (see `apytheus._record.traced`).
        """
        unit = check_unit(options.pop("unit", ""), self._kind)
        if exemplar_source(options.pop("exemplars", None), registry, self._kind) is not None:
            self.__class__ = traced_class(self.__class__)
        family = Family(
            with_unit(self._exposed_name(name), unit),
            description,
            self._kind,
            required_labels,
            default_labels,
            registry,
            reserved=options.pop("reserved", self._reserved),
            max_series=max_series,
            unit=unit,
            **options,
        )
        self._init_family(family, registry)

    @classmethod
    def _exposed_name(cls, name: str) -> str:
        """The family name for ``name`` (a type may drop a suffix it adds itself)."""
        return name


class Counter(CounterHandle, _Metric):
    """A value that only goes up (requests served, errors, bytes sent).

    Exposed as ``<name>_total``; a name given with ``_total`` is not suffixed twice.

    Args:
        exemplars: ``"otel"``: each ``inc()`` without an ``exemplar=`` keeps the
            ``trace_id`` and ``span_id`` of the current sampled OpenTelemetry span
            as the series' exemplar (needs ``opentelemetry-api``); ``False``: never,
            whatever the registry says; None: as the registry says.

    Examples:
        >>> from apytheus import CollectorRegistry, Counter
        >>> c = Counter("jobs_done", "Jobs finished", registry=CollectorRegistry())
        >>> c.inc()
        >>> c.inc(2.5)
    """

    __slots__ = ()

    def __init__(
        self,
        name: str,
        description: str,
        required_labels: Sequence[str] | None = None,
        default_labels: Mapping[str, str] | None = None,
        registry: Registry | None = REGISTRY,
        *,
        max_series: int | None = None,
        unit: str = "",
        exemplars: str | Literal[False] | None = None,
    ) -> None:
        args = (name, description, required_labels, default_labels, registry, max_series)
        self._setup(*args, unit=unit, exemplars=exemplars)

    @classmethod
    def _exposed_name(cls, name: str) -> str:
        """A name given with ``_total`` loses it: the sample adds it again."""
        if isinstance(name, str) and name.endswith("_total") and len(name) > 6:
            return name[:-6]
        return name


class Gauge(GaugeHandle, _Metric):
    """A value that goes up and down (queue length, temperature, in-flight requests).

    Args:
        multiprocess_mode: how workers' values combine on a shared backend:
            ``sum`` (default), ``livesum``, ``max``, ``min``, ``mostrecent``,
            ``all`` or ``liveall`` (and ``livemax``, ``livemin``, ``livemostrecent``).
    """

    __slots__ = ()

    def __init__(
        self,
        name: str,
        description: str,
        required_labels: Sequence[str] | None = None,
        default_labels: Mapping[str, str] | None = None,
        registry: Registry | None = REGISTRY,
        multiprocess_mode: str = "sum",
        *,
        max_series: int | None = None,
        unit: str = "",
    ) -> None:
        if multiprocess_mode not in MULTIPROCESS_MODES:
            raise ValueError(
                f"invalid multiprocess_mode {multiprocess_mode!r}; "
                f"choose one of {sorted(MULTIPROCESS_MODES)}"
            )
        # these modes add a `worker` label on a shared backend
        reserved = ("worker",) if multiprocess_mode in ("all", "liveall") else ()
        args = (name, description, required_labels, default_labels, registry, max_series)
        self._setup(*args, mode=multiprocess_mode, reserved=reserved, unit=unit)


class Histogram(ObservedHandle, _Metric):
    """Observations counted in buckets (request durations, response sizes).

    Args:
        buckets: sorted upper bounds; ``+Inf`` is added. Empty or None means
            `DEFAULT_BUCKETS` (``.005`` … ``10``), but ``()`` with a native
            bucket factor: native buckets only.
        native_bucket_factor: above 1 (1.1 is usual), also native (exponential)
            buckets, each at most this factor wider than the one before
            (see docs/native-histograms.md); protobuf carries them.
        native_max_buckets: more populated native buckets make the exposition
            merge neighbours until they fit.
        native_zero_threshold: observations this close to 0 count in the zero bucket.
        exemplars: ``"otel"``: each ``observe()`` without an ``exemplar=`` keeps the
            ``trace_id`` and ``span_id`` of the current sampled OpenTelemetry span
            as its bucket's exemplar (needs ``opentelemetry-api``); ``False``: never,
            whatever the registry says; None: as the registry says.

    Examples:
        >>> from apytheus import CollectorRegistry, Histogram
        >>> h = Histogram("latency_seconds", "Latency", registry=CollectorRegistry())
        >>> h.observe(0.2)
    """

    __slots__ = ()
    _kind = "histogram"
    _reserved = ("le",)

    def __init__(
        self,
        name: str,
        description: str,
        required_labels: Sequence[str] | None = None,
        default_labels: Mapping[str, str] | None = None,
        registry: Registry | None = REGISTRY,
        buckets: Iterable[float] | None = DEFAULT_BUCKETS,
        *,
        max_series: int | None = None,
        unit: str = "",
        native_bucket_factor: float | None = None,
        native_max_buckets: int = 160,
        native_zero_threshold: float = 2.0**-128,
        exemplars: str | Literal[False] | None = None,
    ) -> None:
        native = None
        if native_bucket_factor is not None:
            native = layout(native_bucket_factor, native_max_buckets, native_zero_threshold)
        no_bounds = native is not None and isinstance(buckets, (tuple, list)) and not buckets
        bounds = () if no_bounds else check_buckets(buckets)
        args = (name, description, required_labels, default_labels, registry, max_series)
        self._setup(*args, bounds=bounds, unit=unit, native=native, exemplars=exemplars)


class Summary(ObservedHandle, _Metric):
    """Count and sum of observations (no quantiles, as prometheus_client)."""

    __slots__ = ()
    _kind = "summary"
    _reserved = ("quantile",)


class Info(_Metric):
    """Key-value facts about the target (version, build host), exposed as ``<name>_info``.

    Examples:
        >>> from apytheus import CollectorRegistry, Info
        >>> i = Info("build", "Build facts", registry=CollectorRegistry())
        >>> i.info({"version": "1.2.3"})
    """

    __slots__ = ()
    _kind = "info"

    @classmethod
    def _exposed_name(cls, name: str) -> str:
        """A name given with ``_info`` loses it: the sample adds it again."""
        if isinstance(name, str) and name.endswith("_info") and len(name) > 5:
            return name[:-5]
        return name

    def info(self, value: Mapping[str, str]) -> None:
        """Replace the facts with ``value`` (label names to string values)."""
        series: InfoSeries = self._check_observable()
        if not isinstance(value, Mapping):
            raise TypeError("info() takes a dict of label names to string values")
        names = tuple(value)
        clash = set(map(str, names)) & set(self._family.label_names)
        if clash:
            raise LabelValidationException(f"info keys {sorted(clash)} are already label names")
        check_label_names((*self._family.label_names, *names))  # alike once escaped, too
        checked = check_label_dict(value, tuple(map(str, names)), self.name)
        series.info = tuple(checked.items())
        series.changed()


class Enum(_Metric):
    """Which of a fixed set of states something is in (exposed as a stateset).

    Examples:
        >>> from apytheus import CollectorRegistry, Enum
        >>> e = Enum("task_state", "State", states=["starting", "running"],
        ...          registry=CollectorRegistry())
        >>> e.state("running")
    """

    __slots__ = ()
    _kind = "stateset"

    def __init__(
        self,
        name: str,
        description: str,
        required_labels: Sequence[str] | None = None,
        default_labels: Mapping[str, str] | None = None,
        registry: Registry | None = REGISTRY,
        states: Iterable[str] = (),
        *,
        max_series: int | None = None,
        unit: str = "",
    ) -> None:
        states, exposed = check_states(states, name, registry)
        check_label_names([*(required_labels or ()), exposed])  # the state label is one too
        args = (name, description, required_labels, default_labels, registry, max_series)
        self._setup(*args, reserved=(name, exposed), states=states, unit=unit)

    def state(self, state: str) -> None:
        """Switch to ``state`` (one of the declared states)."""
        series: ScalarSeries = self._check_observable()
        try:
            index = self._family.states.index(state)
        except ValueError:
            raise ValueError(
                f"{state!r} is not a state of {self.name!r}; states: {list(self._family.states)}"
            ) from None
        series.set(index)


publish(globals())
