"""RECORD: Counter, Gauge, Histogram, Summary, Info, Enum and custom collectors.

A metric object is a *handle*: the metric itself, or a view on it with some
labels filled in (``labels()`` returns one). Recording on a handle whose
labels are complete writes into the series' per-thread cell: no lock, no
I/O, no await, on every backend.
"""

from __future__ import annotations

import math
import numbers
import reprlib
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from threading import get_ident
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from ._family import Family
from ._instrument import ExceptionCounter, InProgress, Timer
from ._labels import LabelSet, check_label_dict, check_label_names, label_value
from .backends import Backend, get_backend
from .backends._series import Exemplar, InfoSeries, ScalarSeries
from .exceptions import BucketException, LabelValidationException, UnobservableMetricException
from .registry import REGISTRY, Registry

if TYPE_CHECKING:
    from typing_extensions import Self

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

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""Histogram upper bounds (seconds) used when none are given; ``+Inf`` is added."""

MULTIPROCESS_MODES = frozenset(
    {"sum", "livesum", "max", "livemax", "min", "livemin"}
    | {"mostrecent", "livemostrecent", "all", "liveall"}
)


_TYPED = object()  # marks a cache key that carries its values' classes


class _Unobservable(dict[int, Any]):
    """The cells of a handle whose labels are incomplete: any record raises."""

    __slots__ = ("_message",)

    def __init__(self, message: str) -> None:
        super().__init__()
        self._message = message

    def __missing__(self, key: int) -> Any:
        raise UnobservableMetricException(self._message)


def _number(value: object, what: str) -> float:
    """Slow path of value checks: real numbers but bool become floats, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        shown = reprlib.repr(value)
        raise TypeError(f"{what} must be a number, not {type(value).__name__} ({shown})")
    try:
        return float(value)
    except OverflowError:
        size = f"a {value.bit_length()}-bit int" if isinstance(value, int) else reprlib.repr(value)
        raise ValueError(f"{what} is too large for a float ({size})") from None


def _either(amount: float, value: float) -> float:
    """``value=`` (pytheus' name) given: the amount, unless ``amount`` was given too."""
    if amount.__class__ in (int, float) and amount == 1:  # 1 is the default: not given
        return value
    raise TypeError(f"give the amount or value=, not both (got {amount!r} and value={value!r})")


def _exemplar(labels: object, value: float) -> Exemplar:
    if not isinstance(labels, Mapping):
        raise TypeError("exemplar must be a dict of label names to string values")
    names = check_label_names(labels)
    pairs = tuple(sorted(check_label_dict(labels, names, "exemplar").items()))
    if sum(len(k) + len(v) for k, v in pairs) > 128:
        raise ValueError("exemplar labels may hold at most 128 characters (OpenMetrics)")
    return Exemplar(LabelSet(pairs), value, time.time())


class _Metric:
    """What every metric handle shares: labels, caching, registration."""

    __slots__ = (
        "__weakref__",
        "_cache",
        "_cells",
        "_family",
        "_labels",
        "_pos_cache",
        "_series",
        "description",
        "name",
    )

    _kind: ClassVar[str] = "unknown"
    _reserved: ClassVar[tuple[str, ...]] = ()

    _family: Family
    _labels: dict[str, str]
    _series: Any
    _cells: dict[int, Any]
    _cache: dict[Any, Any]
    _pos_cache: dict[Any, Any]

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
        self._init_family(
            Family(
                name,
                description,
                self._kind,
                required_labels,
                default_labels,
                registry,
                reserved=self._reserved,
                max_series=max_series,
            ),
            registry,
        )

    def _init_family(self, family: Family, registry: Registry | None) -> None:
        self._bind(family, {})
        if family.label_names and len(family.defaults) == len(family.label_names):
            family.handles[family.canonical({})] = self
        if registry is not None:
            registry.register(self)

    def _bind(self, family: Family, labels: dict[str, str]) -> None:
        self._family = family
        self.name = family.name
        self.description = family.documentation
        self._labels = labels
        self._cache = {}
        self._pos_cache = {}
        family.views.add(self)
        pairs = family.canonical(labels)
        if len(pairs) == len(family.label_names):
            self._series = family.series(pairs)
            self._cells = self._series.cells if hasattr(self._series, "cells") else {}
        else:
            missing = [n for n in family.label_names if n not in dict(pairs)]
            self._series = None
            self._cells = _Unobservable(
                f"metric {family.name!r} cannot be observed: labels {missing} have no value; "
                f"call .labels({', '.join(f'{n}=...' for n in missing)}) first"
            )

    # -- labels -----------------------------------------------------------
    def labels(self, *args: Any, **kwargs: Any) -> Self:
        """Return the handle with more labels filled in (cached).

        Takes a dict (pytheus), keyword arguments, or values in declared
        order (prometheus_client). Labels not given keep their default. The
        result can be stored and observed once every label has a value;
        until then it takes the rest with another ``labels()`` call.

        Raises:
            LabelValidationException: unknown label names, a mix of forms,
                or a wrong number of positional values.

        Examples:
            >>> from apytheus import CollectorRegistry, Counter
            >>> c = Counter("hits", "Hits", ["path", "method"], registry=CollectorRegistry())
            >>> get = c.labels(method="GET")       # partial: reusable
            >>> get.labels(path="/").inc()
            >>> c.labels({"path": "/", "method": "GET"}) is get.labels(path="/")
            True
        """
        if args:
            if len(args) == 1 and args[0].__class__ is dict:
                key: Any = tuple(args[0].items())
                cache = self._cache
            else:  # positional values: a cache of their own, so ("a", "1") never matches a=1
                key, cache = args, self._pos_cache
        elif kwargs:
            key, cache = tuple(kwargs.items()), self._cache
        else:
            return self
        try:
            return cache[key]  # type: ignore[no-any-return]
        except (KeyError, TypeError):
            return self._labels_slow(args, kwargs, key, cache)

    def _resolve(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, str]:
        """This handle's labels plus the given ones, validated (creates nothing)."""
        family = self._family
        given: Mapping[Any, Any]
        if args and kwargs:
            raise LabelValidationException(
                "pass labels as a dict, as keyword arguments or as positional values, not a mix"
            )
        if len(args) == 1 and isinstance(args[0], Mapping):
            given = args[0]
        elif args:
            names = [n for n in family.label_names if n not in self._labels]
            if len(args) != len(names):
                raise LabelValidationException(
                    f"metric {family.name!r} expects {len(names)} label values "
                    f"({', '.join(names)}), got {len(args)}"
                )
            given = {n: label_value(n, v) for n, v in zip(names, args, strict=True)}
        else:
            given = kwargs
        return {**self._labels, **check_label_dict(given, family.label_names, family.name)}

    def _labels_slow(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], key: Any, cache: dict[Any, Any]
    ) -> Self:
        family = self._family
        single = len(args) == 1 and isinstance(args[0], Mapping)
        if single and args[0].__class__ is not dict:  # an OrderedDict, a MappingProxyType…
            key, cache = tuple(args[0].items()), self._cache
        values = args[0].values() if single else args or kwargs.values()
        # All-str keys go in the fast cache. 1, 1.0 and True are equal as keys but
        # render as different label values, so other keys go in with their classes
        # (floats never: -0.0 == 0.0 renders differently too).
        classes = tuple(v.__class__ for v in values)
        if all(c is str for c in classes):
            store: Any = key
        elif key is None or float in classes:
            store = None
        else:
            store = (_TYPED, key, classes)
            try:
                return cache[store]  # type: ignore[no-any-return]
            except (KeyError, TypeError):  # TypeError: unhashable (refused below)
                pass
        merged = self._resolve(args, kwargs)
        pairs = family.canonical(merged)
        with family.lock:  # remove() clears the caches under the same lock
            handle = family.handles.get(pairs)
            if handle is None:
                if len(pairs) == len(family.label_names) and family.full_for(pairs):
                    # Full: the overflow series, and nothing cached for these labels.
                    return self._labels_slow((), dict(family.overflow_pairs), None, {})
                handle = self.__class__.__new__(self.__class__)
                handle._bind(family, merged)
                family.handles[pairs] = handle
            if store is not None and handle is not self:  # never in its own cache: a cycle
                cache[store] = handle
        return handle

    def remove(self, *args: Any, **kwargs: Any) -> None:
        """Stop exposing one labeled series (values in declared order, a dict, or keywords).

        A series that does not exist is ignored, as in prometheus_client.

        Raises:
            LabelValidationException: unknown label names or incomplete labels.
        """
        family = self._family
        if not family.label_names:
            raise ValueError(f"metric {family.name!r} has no labels: no labeled series to remove")
        pairs = family.canonical(self._resolve(args, kwargs))
        if len(pairs) != len(family.label_names):
            raise LabelValidationException("remove() needs a value for every label")
        family.remove([pairs])

    def remove_by_labels(self, labels: Mapping[str, str]) -> None:
        """Stop exposing every series whose labels include all of ``labels``."""
        if not isinstance(labels, Mapping):
            raise TypeError("labels must be a dict of label names to values")
        family = self._family
        wanted = set(check_label_dict(labels, family.label_names, family.name).items())
        if wanted:
            family.remove([p for p in family.series_pairs() if wanted <= set(p)])

    def clear(self) -> None:
        """Stop exposing every labeled series (the default-labels series stays)."""
        family = self._family
        keep = family.canonical({})
        family.remove([p for p in family.series_pairs() if p != keep])

    def _check_observable(self) -> Any:
        if self._series is None:
            self._cells[0]  # raises UnobservableMetricException with the missing labels
        return self._series

    @property
    def _metric_value_backend(self) -> Backend:
        """The backend this metric records into (pytheus' attribute, kept for its samples)."""
        return get_backend()

    def __repr__(self) -> str:
        labels = f", labels={self._labels}" if self._labels else ""
        return f"{self.__class__.__name__}({self.name!r}{labels})"


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
        if isinstance(name, str) and name.endswith("_total") and len(name) > 6:
            name = name[:-6]
        super().__init__(
            name, description, required_labels, default_labels, registry, max_series=max_series
        )

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
            self._inc_extras(amount if value is None else _either(amount, value), exemplar)
            return
        # Floats and ints that fit a float's range take the fast path; anything
        # else is converted (and checked) first. The bounds are folded constants.
        if (
            amount.__class__ is not float
            and (amount.__class__ is not int or not -(2**63) < amount < 2**63)
            or not amount >= 0
        ):
            amount = _number(amount, "counter increment")
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
        found = _exemplar(exemplar, _number(amount, "counter increment")) if exemplar else None
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
        self._init_family(
            Family(
                name,
                description,
                "gauge",
                required_labels,
                default_labels,
                registry,
                mode=multiprocess_mode,
                max_series=max_series,
                # these modes add a `worker` label on a shared backend
                reserved=("worker",) if multiprocess_mode in ("all", "liveall") else (),
            ),
            registry,
        )

    def inc(self, amount: float = 1.0, *, value: float | None = None) -> None:
        """Add ``amount`` (may be negative; ``value=`` is pytheus' name). Never blocks."""
        if value is not None:
            amount = _either(amount, value)
        if (
            amount.__class__ is not float
            and (amount.__class__ is not int or not -(2**63) < amount < 2**63)
            or amount != amount
        ):
            amount = _number(amount, "gauge increment")
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
            amount = _either(amount, value)
        if (
            amount.__class__ is not float
            and (amount.__class__ is not int or not -(2**63) < amount < 2**63)
            or amount != amount
        ):
            amount = _number(amount, "gauge decrement")
            if math.isnan(amount):
                raise ValueError("gauge decrement must not be NaN")
        try:
            cells = self._series.cells  # not cached: set() replaces it
        except AttributeError:  # no series: labels are missing
            self._check_observable()  # raises, naming them
            raise
        tid = get_ident()
        try:
            cells[tid] -= amount
        except KeyError:
            cells[tid] = -amount

    def set(self, value: float) -> None:
        """Set the value. Never blocks."""
        if value.__class__ is not float and (
            value.__class__ is not int or not -(2**63) < value < 2**63
        ):
            value = _number(value, "gauge value")
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
            value = _number(value, "observed value")
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
        found = _exemplar(exemplar, _number(value, "observed value"))
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
        self._init_family(
            Family(
                name,
                description,
                "histogram",
                required_labels,
                default_labels,
                registry,
                reserved=("le",),
                bounds=_check_buckets(buckets),
                max_series=max_series,
            ),
            registry,
        )


def _check_buckets(buckets: Iterable[float] | None) -> tuple[float, ...]:
    if buckets is None:
        return DEFAULT_BUCKETS
    if isinstance(buckets, (str, bytes)) or not isinstance(buckets, Iterable):
        raise BucketException(f"buckets must be a sequence of numbers, not {buckets!r}")
    given = list(buckets)  # read once: it may be an iterator
    bounds = [_bucket_bound(b) for b in given]
    if bounds and bounds[-1] == math.inf:
        bounds.pop()
    if not given:
        return DEFAULT_BUCKETS
    if any(b >= c for b, c in zip(bounds[:-1], bounds[1:], strict=True)):
        raise BucketException(f"buckets must be strictly increasing, got {given}")
    if any(math.isinf(b) for b in bounds):
        raise BucketException("only the last bucket may be +Inf")
    return tuple(bounds)


def _bucket_bound(bound: object) -> float:
    try:
        value = _number(bound, "bucket bound")
    except TypeError as exc:
        raise BucketException(str(exc)) from None
    if math.isnan(value):
        raise BucketException("bucket bounds must not be NaN")
    return value


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
        if isinstance(name, str) and name.endswith("_info") and len(name) > 5:
            name = name[:-5]
        super().__init__(
            name, description, required_labels, default_labels, registry, max_series=max_series
        )

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
        self._init_family(
            Family(
                name,
                description,
                "stateset",
                required_labels,
                default_labels,
                registry,
                reserved=(name, exposed),
                states=tuple(states),
                max_series=max_series,
            ),
            registry,
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
