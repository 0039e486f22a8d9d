"""RECORD: one metric's state behind its handles: label names, children, series, backend."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any

from .._labels import LabelPairs, LabelSet, check_label_dict, check_label_names
from .._native import Layout
from ..backends._current import current, follow
from ..backends._protocol import Backend, MetricSpec, Series, SupportsShare
from ..backends._series import HistogramSeries, InfoSeries, ScalarSeries
from .values import check_options

log = logging.getLogger("apytheus")

Values = tuple[str, ...]
"""A series' label values, in declared order: its key in its family (and its children's)."""

DEFAULT_MAX_SERIES = 100_000
"""Series a metric may have before new label sets go to its overflow series."""

OVERFLOW = "<overflow>"
"""The value of every label of a metric's overflow series."""

# The sample names each kind adds to its family name; used to detect clashes.
SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "gauge": (),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": (),
}


class Family:
    """Everything one metric shares between its handles (pytheus' collector).

    Handles (the public ``Counter``, ``Gauge``, … objects) are views on a
    family with some labels filled in. The family creates series, tells the
    backend about them once registered, and caches handles by label values.

    A series is known by its label values in declared order (``Values``): the
    same tuple is the key of ``_series`` and of ``handles``, and the values of
    the series' label set, whose names are the family's ``label_names``.

    Handles hold their family. The family holds its children (``handles``,
    no weak reference each) while the metric itself lives, and the metric and
    what caches children only weakly (``root``, ``views``, ``watchers``).
    When the metric goes, the family lets go of its children. So dropping the
    last reference to a metric (and its registry) frees it at once, without
    waiting for the cyclic garbage collector, and its series stop being
    flushed from that moment; a child the program still holds keeps the family
    (and its series) alive, as it should.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        kind: str,
        label_names: Iterable[object] | None,
        default_labels: Mapping[str, object] | None,
        registry: Any,
        *,
        reserved: tuple[str, ...] = (),
        bounds: tuple[float, ...] = (),
        mode: str = "sum",
        states: tuple[str, ...] = (),
        max_series: int | None = None,
        unit: str = "",
        native: Layout | None = None,
    ) -> None:
        check_options(name, documentation, default_labels, registry, max_series)
        names = check_label_names(label_names or (), reserved)
        self.name = name
        self.documentation = documentation
        self.kind = kind
        self.unit = unit
        self.native = native  # a native histogram's bucket layout (None: classic only)
        self.label_names = names
        self.width = len(names)
        # a mapping's values in declared order, as a tuple (KeyError: a name is missing)
        self.values_of: Callable[[Mapping[Any, Any]], tuple[Any, ...]] = (
            itemgetter(*names) if len(names) > 1 else _one(names[0]) if names else _none
        )
        self.bounds = bounds
        self.states = states
        self.defaults: dict[str, str] = {}
        if default_labels:
            self.defaults = check_label_dict(default_labels, names, name)
        prefix = registry.prefix if registry is not None else None
        self.spec = MetricSpec(
            name=f"{prefix}_{name}" if prefix else name,
            kind=kind,
            label_names=names,
            bounds=bounds,
            mode=mode,
            native=native,
        )
        self.max_series = DEFAULT_MAX_SERIES if max_series is None else int(max_series)
        self.overflow_values: Values = (OVERFLOW,) * len(names)
        self.overflowed = 0  # label sets refused because the metric was full
        self._warned = False
        # the children, for labels() in any form to return the same one, while the
        # metric lives (see `set_root`): a complete one by its label values (the key of
        # its series), a partial one by its label pairs. Also the metric's own cache of
        # labels(): keys of other forms (defaults filled, typed values) are `aliases`
        self.handles: dict[Any, Any] = {}
        self.aliases: list[Any] = []
        self.root: weakref.ref[Any] | None = None  # the metric itself
        # the handles that have label caches (made on first use), which remove() empties
        self.views: weakref.WeakSet[Any] = weakref.WeakSet()
        # others' caches of this family's children: a method that empties them
        self.watchers: list[weakref.WeakMethod[Callable[[], None]]] = []
        self._series: dict[Values, Series] = {}
        self._backend: Backend | None = None
        self._shared = False  # the backend reads `_series` itself (see SupportsShare)
        self.lock = threading.RLock()

    # -- series -----------------------------------------------------------
    def canonical(self, labels: Mapping[str, str]) -> LabelPairs:
        """The label pairs of ``labels`` (over the defaults), in declared order."""
        merged = {**self.defaults, **labels} if self.defaults else labels
        return tuple((n, merged[n]) for n in self.label_names if n in merged)

    def series(self, values: Values) -> Series:
        """Return the series for complete label ``values``, creating it once."""
        found = self._series.get(values)
        if found is not None:
            return found
        with self.lock:
            found = self._series.get(values)
            if found is None:
                found = self._new_series(LabelSet(self.label_names, values))
                self._series[values] = found
                if self._backend is not None and not self._shared:
                    self._backend.attach(self.spec, found)
            return found

    def _new_series(self, labels: LabelSet) -> Series:
        if self.kind in ("histogram", "summary"):
            return HistogramSeries(labels, self.bounds, self.native is not None)
        if self.kind == "info":
            return InfoSeries(labels)
        return ScalarSeries(labels)

    def found(self, values: Values) -> Series | None:
        """The series of label ``values``, if it exists (nothing is made)."""
        return self._series.get(values)

    def set_root(self, metric: Any) -> None:
        """Note the metric itself; when it is freed, let go of the children (no cycle)."""
        ref = weakref.ref(self)

        def gone(_: object) -> None:
            family = ref()
            if family is not None:
                family.handles = {}
                family.aliases = []

        self.root = weakref.ref(metric, gone)

    def keep(self, key: Values | LabelPairs, handle: Any) -> None:
        """Remember a child, for ``labels()`` in any form to find the same one.

        Not once the metric itself is gone: the child would then hold the
        family that holds it, a cycle only the garbage collector can break.
        """
        if self.root is not None and self.root() is not None:
            self.handles[key] = handle

    def full_for(self, values: Values) -> bool:
        """Whether a new series for ``values`` would go beyond ``max_series`` (counts it)."""
        used = len(self._series) - (self.overflow_values in self._series)  # overflow is extra
        if values in self._series or used < self.max_series:
            return False
        if values == self.overflow_values:
            return False  # the overflow series itself is always allowed (one beyond the limit)
        self.overflowed += 1
        if not self._warned:
            self._warned = True
            log.warning(
                "apytheus: metric %r reached max_series=%d; new label sets are recorded in "
                "its series with every label %r (is a label unbounded, like a user id or a "
                "raw path?); apytheus_series_overflow_total counts them",
                self.name,
                self.max_series,
                OVERFLOW,
            )
        return True

    def local_series(self) -> list[Series]:
        """The series created in this process (for metrics no registry holds)."""
        with self.lock:
            return list(self._series.values())

    def series_values(self) -> list[Values]:
        """The label values of every series created in this process."""
        with self.lock:
            return list(self._series)

    def remove(self, dropped: list[Values]) -> None:
        """Drop these series (missing ones are ignored) and every cached handle to them.

        The series of the metric itself (its defaults fill every label) is made
        again at once, as when the metric was created: it records on.
        """
        root = self.root() if self.root is not None else None
        with self.lock:
            for values in dropped:
                series = self._series.pop(values, None)
                if series is not None and self._backend is not None and not self._shared:
                    self._backend.detach(self.spec, series.labels)
                if series is not None and root is not None and root._series is series:
                    root._series = fresh = self.series(values)
                    root._cells = cells_of(fresh)
            for key in [*dropped, *self.aliases]:
                self.handles.pop(key, None)
            self.aliases.clear()
            for view in list(self.views):
                for cache in (view._cache, view._pos_cache):
                    if cache is not None and cache is not self.handles:
                        cache.clear()
            alive = [w for w in self.watchers if w() is not None]
            self.watchers = alive
            for watcher in alive:
                clear = watcher()
                if clear is not None:
                    clear()

    # -- backend ----------------------------------------------------------
    def attach(self) -> None:
        """Start sharing this family's series with the process' backend."""
        backend = follow(self)
        with self.lock:
            if self._backend is None:
                self._use(backend)
        latest = current()
        if latest is not backend:  # switched meanwhile, before this family could follow
            self.reattach(latest)

    def reattach(self, backend: Backend) -> int:
        """Move every series to ``backend`` (called on a backend switch)."""
        with self.lock:
            if self._backend is None:
                return 0
            self._use(backend)
            return len(self._series)

    def _use(self, backend: Backend) -> None:
        """Hand this family's series to ``backend`` (under the lock)."""
        self._backend, self._shared = backend, isinstance(backend, SupportsShare)
        if isinstance(backend, SupportsShare):
            backend.share(self.spec, self._series)
        else:
            for s in self._series.values():
                backend.attach(self.spec, s)

    @property
    def attached(self) -> bool:
        """Whether a registry holds this family (its series live in the backend)."""
        return self._backend is not None

    def sample_names(self, prefix: str | None) -> list[str]:
        """Every sample name this family can expose, with the registry prefix."""
        base = f"{prefix}_{self.name}" if prefix else self.name
        return [base] + [base + s for s in SUFFIXES[self.kind]]

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"


def cells_of(series: Series) -> Any:
    """What a handle records into: its series' cells (an info series has none)."""
    return series.cells if not isinstance(series, InfoSeries) else []


def watch_cache(metric: object, clear: Callable[[], None]) -> None:
    """Call the bound method ``clear`` whenever series of ``metric`` are removed.

    For caches of the metric's children kept elsewhere. Held weakly: the
    family never keeps their owner (and through it, itself) alive.
    """
    family = family_of(metric)
    if family is not None:
        with family.lock:
            family.watchers.append(weakref.WeakMethod(clear))


def family_of(obj: object) -> Family | None:
    """The family behind a metric handle (or the family itself), else None."""
    if isinstance(obj, Family):
        return obj
    fam = getattr(obj, "_family", None)
    return fam if isinstance(fam, Family) else None


def _one(name: str) -> Callable[[Mapping[Any, Any]], tuple[Any, ...]]:
    """`values_of` for one label (``itemgetter(name)`` returns the bare value)."""

    def values_of(given: Mapping[Any, Any]) -> tuple[Any, ...]:
        return (given[name],)

    return values_of


def _none(given: Mapping[Any, Any]) -> tuple[Any, ...]:
    """`values_of` for no label."""
    return ()
