"""RECORD: Counter, Gauge, Histogram, Summary, Info, Enum and custom collectors.

A metric object is a *handle* (see ``apytheus._record.handle``): the metric
itself, or a view on it with some labels filled in (``labels()`` returns
one). Recording on a handle whose labels are complete writes into the
series' per-thread cell: no lock, no I/O, no await, on every backend. The
record methods below check their value inline, with one class test for the
common case, and call `number` only for anything else: they are the hot path.
"""

from __future__ import annotations

import math
import reprlib
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from threading import get_ident
from typing import Any, ClassVar, TypeVar, overload

from ._labels import check_label_dict, check_label_names
from ._public import publish
from ._record.family import Family
from ._record.handle import Handle
from ._record.timers import ExceptionCounter, InProgress, Timer
from ._record.values import (
    DEFAULT_BUCKETS,
    MULTIPROCESS_MODES,
    check_buckets,
    either,
    exemplar_of,
    number,
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


F = TypeVar("F", bound=Callable[..., Any])


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
    ) -> None:
        self._setup(name, description, required_labels, default_labels, registry, max_series)

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
        """Make the family (name, labels and ``options`` checked) and register it."""
        family = Family(
            self._exposed_name(name),
            description,
            self._kind,
            required_labels,
            default_labels,
            registry,
            reserved=options.pop("reserved", self._reserved),
            max_series=max_series,
            **options,
        )
        self._init_family(family, registry)

    @classmethod
    def _exposed_name(cls, name: str) -> str:
        """The family name for ``name`` (a type may drop a suffix it adds itself)."""
        return name


class Counter(_Metric):
    """A value that only goes up (requests served, errors, bytes sent).

    Exposed as ``<name>_total``; a name given with ``_total`` is not suffixed twice.

    Examples:
        >>> from apytheus import CollectorRegistry, Counter
        >>> c = Counter("jobs_done", "Jobs finished", registry=CollectorRegistry())
        >>> c.inc()
        >>> c.inc(2.5)
    """

    __slots__ = ()
    _kind = "counter"

    @classmethod
    def _exposed_name(cls, name: str) -> str:
        """A name given with ``_total`` loses it: the sample adds it again."""
        if isinstance(name, str) and name.endswith("_total") and len(name) > 6:
            return name[:-6]
        return name

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
        tid = get_ident()
        try:
            cells[tid] += amount
        except KeyError:
            cells[tid] = amount

    def _inc_extras(self, amount: float, exemplar: Mapping[str, str] | None) -> None:
        """``inc`` with an exemplar or pytheus' ``value=``: validate all, then record."""
        found = exemplar_of(exemplar, number(amount, "counter increment")) if exemplar else None
        self.inc(amount)
        if found is not None:
            self._series.exemplar = found

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
            cells: dict[int, float] = {}
            # Handles cache the cells of their series: point every one at the new ones.
            for view in list(family.views):
                if view._cells is old:
                    view._cells = cells
            series.cells = cells
            series.created = time.time()
            series.exemplar = None

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


class Gauge(_Metric):
    """A value that goes up and down (queue length, temperature, in-flight requests).

    Args:
        multiprocess_mode: how workers' values combine on a shared backend:
            ``sum`` (default), ``livesum``, ``max``, ``min``, ``mostrecent``,
            ``all`` or ``liveall`` (and ``livemax``, ``livemin``, ``livemostrecent``).
    """

    __slots__ = ()
    _kind = "gauge"
    _timed: ClassVar[str] = "set"  # what time() hands the seconds to

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
    ) -> None:
        if multiprocess_mode not in MULTIPROCESS_MODES:
            raise ValueError(
                f"invalid multiprocess_mode {multiprocess_mode!r}; "
                f"choose one of {sorted(MULTIPROCESS_MODES)}"
            )
        # these modes add a `worker` label on a shared backend
        reserved = ("worker",) if multiprocess_mode in ("all", "liveall") else ()
        self._setup(
            name,
            description,
            required_labels,
            default_labels,
            registry,
            max_series,
            mode=multiprocess_mode,
            reserved=reserved,
        )

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
        try:
            cells = self._series.cells  # not cached: set() replaces it
        except AttributeError:  # no series: labels are missing
            self._check_observable()  # raises, naming them
            raise
        tid = get_ident()
        try:
            cells[tid] += amount
        except KeyError:
            cells[tid] = amount

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
            series.cells = {0: value}  # slot 0: no thread has ident 0

    def set_to_current_time(self) -> None:
        """Set the value to the current Unix time in seconds."""
        self.set(time.time())

    def set_function(self, fn: Callable[[], float]) -> None:
        """Compute the value by calling ``fn`` at every collection (this process only)."""
        if not callable(fn):
            raise TypeError(f"set_function needs a callable, not {type(fn).__name__}")
        series: ScalarSeries = self._check_observable()
        series.function = fn

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


class _Observed(_Metric):
    """Histogram and Summary: ``observe``, ``time`` and the decorator."""

    __slots__ = ("_bounds",)
    _bounds: tuple[float, ...]
    _timed: ClassVar[str] = "observe"  # what time() hands the seconds to

    def _bind(self, family: Family, labels: dict[str, str]) -> None:
        self._bounds = family.bounds
        super()._bind(family, labels)

    def observe(self, value: float, exemplar: Mapping[str, str] | None = None) -> None:
        """Record one observation (e.g. a duration in seconds). Never blocks.

        Raises:
            ValueError: ``value`` is NaN, or the exemplar is invalid (a Summary has none).
            TypeError: ``value`` is not a number.
        """
        if exemplar is not None:
            self._observe_with_exemplar(value, exemplar)
            return
        if (
            value.__class__ is not float
            and (value.__class__ is not int or not -(2**63) < value < 2**63)
            or value != value
        ):
            value = number(value, "observed value")
            if math.isnan(value):
                raise ValueError("observed value must not be NaN")
        cells = self._cells
        tid = get_ident()
        try:
            cell = cells[tid]
        except KeyError:
            cell = cells.setdefault(tid, self._series.new_cell())
        i = bisect_left(self._bounds, value)
        cell[i] += 1
        cell[-1] += value

    def _observe_with_exemplar(self, value: float, exemplar: Mapping[str, str]) -> None:
        """``observe`` with an exemplar: validate both, record, keep it on its bucket."""
        if self._family.kind == "summary":
            raise ValueError("OpenMetrics has no exemplars on summaries; use a Histogram")
        found = exemplar_of(exemplar, number(value, "observed value"))
        self.observe(value)
        self._series.exemplars[bisect_left(self._bounds, found.value)] = found

    def time(self) -> Timer:
        """Observe the seconds a block or function took (``with``, ``async with``, decorator)."""
        self._check_observable()
        return Timer(self, self._timed)

    @overload
    def __call__(self, func: F) -> F: ...
    @overload
    def __call__(self, func: None = None) -> Callable[[F], F]: ...
    def __call__(self, func: F | None = None) -> F | Callable[[F], F]:
        """Decorator (``@histogram``): observe the duration of each call."""
        timer = self.time()
        return timer if func is None else timer(func)


class Histogram(_Observed):
    """Observations counted in buckets (request durations, response sizes).

    Args:
        buckets: sorted upper bounds; ``+Inf`` is added. Empty or None means
            `DEFAULT_BUCKETS` (``.005`` … ``10``).

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
    ) -> None:
        bounds = check_buckets(buckets)
        self._setup(
            name, description, required_labels, default_labels, registry, max_series, bounds=bounds
        )


class Summary(_Observed):
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
        check_label_names(names)
        checked = check_label_dict(value, tuple(map(str, names)), self.name)
        series.info = tuple(checked.items())


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
        states: Sequence[str] = (),
        *,
        max_series: int | None = None,
    ) -> None:
        if isinstance(states, str) or not isinstance(states, Iterable):
            raise ValueError("Enum needs states: a non-empty list of strings")
        states = tuple(states)  # any iterable (a generator is read once)
        if not states or not all(isinstance(s, str) for s in states):
            raise ValueError("Enum needs states: a non-empty list of strings")
        if len(set(states)) != len(states):
            raise ValueError(f"Enum states must be distinct, got {list(states)}")
        prefix = getattr(registry, "prefix", None) if registry is not None else None
        exposed = f"{prefix}_{name}" if isinstance(prefix, str) and prefix else name
        if isinstance(exposed, str) and ":" in exposed:
            raise ValueError(
                f"Enum name {exposed!r} must not contain ':': it also names the state label"
            )
        self._setup(
            name,
            description,
            required_labels,
            default_labels,
            registry,
            max_series,
            reserved=(name, exposed),
            states=tuple(states),
        )

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


class CustomCollector:
    """Base for collectors that produce metrics when collected (pytheus style).

    Subclass it and implement ``collect()`` (or ``async def collect()``),
    yielding metrics created with ``registry=None``. Register an instance
    with ``REGISTRY.register(MyCollector())``.
    """

    @property
    def name(self) -> str:
        """The collector's name: its lowercased class name."""
        return self.__class__.__name__.lower()

    def collect(self) -> Iterable[Any]:
        """Yield the metrics to expose."""
        raise NotImplementedError


publish(globals())
