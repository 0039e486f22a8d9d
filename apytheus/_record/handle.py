"""RECORD: a metric handle, the view on a family with some labels filled in.

``labels()`` returns handles (cached), ``remove()`` / ``clear()`` drop series.
A handle whose labels are complete holds its series and that series' cells,
which the public types record into (see `apytheus.metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .._labels import LabelPairs, check_label_dict, label_value
from ..backends import Backend, get_backend
from ..backends._series import BASE
from ..exceptions import LabelValidationException, UnobservableMetricException
from .family import Family, Values, cells_of

if TYPE_CHECKING:
    from typing_extensions import Self

_TYPED = object()  # marks a cache key that carries its values' classes


class Unobservable(list[Any]):
    """The cells of a handle whose labels are incomplete: any record raises."""

    __slots__ = ("_message",)

    def __init__(self, message: str) -> None:
        super().__init__()
        self._message = message

    def __getitem__(self, key: Any) -> Any:
        raise UnobservableMetricException(self._message)


class Handle:
    """What every metric handle shares: its family, labels, cached children, removal."""

    # A child costs what it must: no label dict (its series has the labels), and
    # no caches until labels() is called on it (rare: on the metric, on partials).
    __slots__ = ("__weakref__", "_cache", "_cells", "_family", "_labels", "_pos_cache", "_series")

    _kind: ClassVar[str] = "unknown"
    _reserved: ClassVar[tuple[str, ...]] = ()

    _family: Family
    _labels: dict[str, str] | None  # the labels given, where defaults filled some (else None)
    _series: Any
    _cells: Any  # its series' cells: a list (counters, gauges) or a dict (histograms)
    _cache: dict[Any, Any] | None
    _pos_cache: dict[Any, Any] | None

    @property
    def name(self) -> str:
        """The metric's name (without the registry's prefix)."""
        return self._family.name

    @property
    def description(self) -> str:
        """The metric's help text."""
        return self._family.documentation

    def _init_family(self, family: Family, registry: Any) -> None:
        self._bind(family, {}, family.canonical({}))
        # The metric's caches of labels() are the family's dict of children: the usual
        # key (the label values in declared order) is then kept once, by the series.
        # Values given positionally are that key too (see labels() for why they never
        # find anything else there).
        self._cache = self._pos_cache = family.handles
        family.set_root(self)
        if registry is not None:
            registry.register(self)

    def _bind(self, family: Family, labels: dict[str, str], pairs: LabelPairs) -> None:
        self._family = family
        self._cache = self._pos_cache = None
        # the labels given, where defaults filled some (None: the series' labels, all given)
        self._labels = None if len(labels) == len(family.label_names) else labels
        if len(pairs) == family.width:
            # every label given (the usual case): their values at C speed, else from pairs
            given = len(labels) == family.width
            values = family.values_of(labels) if given else tuple([v for _, v in pairs])
            self._series = family.series(values)
            self._cells = cells_of(self._series)
        else:
            missing = [n for n in family.label_names if n not in dict(pairs)]
            self._series = None
            self._cells = Unobservable(
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
        # The usual key is the label values in declared order, the key of the series
        # itself: every name given, in any order, finds it without building pairs.
        # KeyError: not cached yet, or an unknown name; TypeError: no cache yet (None),
        # or unhashable values. Either way the slow path finds, makes or refuses it.
        key: Any = None
        try:
            if args:
                given = args[0]
                if given.__class__ is str and not kwargs:
                    # Values in declared order (on a partial handle: of the labels it
                    # lacks). A first str keeps a tuple of pairs from finding a partial child.
                    return self._pos_cache[args]  # type: ignore[index, no-any-return]
                if given.__class__ is dict and len(args) == 1 and not kwargs:
                    family = self._family
                    if len(given) == family.width:
                        key = family.values_of(given)
                    else:  # some names: the pairs as given
                        key = tuple(given.items())
                    return self._cache[key]  # type: ignore[index, no-any-return]
            elif kwargs:
                family = self._family
                if len(kwargs) == family.width:
                    key = family.values_of(kwargs)
                else:
                    key = tuple(kwargs.items())
                return self._cache[key]  # type: ignore[index, no-any-return]
            else:
                return self
        except (KeyError, TypeError):
            pass
        return self._labels_slow(args, kwargs, key)

    def _given(self) -> dict[str, str]:
        """The labels given to this handle (with a complete series, all of them)."""
        if self._labels is not None:
            return self._labels
        return self._series.labels.as_dict()  # type: ignore[no-any-return]

    def _cache_for(self, positional: bool) -> dict[Any, Any]:
        """This handle's cache of children (made on first use; remove() empties it)."""
        cache = self._pos_cache if positional else self._cache
        if cache is None:
            cache = {}
            if positional:
                self._pos_cache = cache
            else:
                self._cache = cache
            self._family.views.add(self)
        return cache

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
            have = self._given()
            names = [n for n in family.label_names if n not in have]
            if len(args) != len(names):
                raise LabelValidationException(
                    f"metric {family.name!r} expects {len(names)} label values "
                    f"({', '.join(names)}), got {len(args)}"
                )
            given = {n: label_value(n, v) for n, v in zip(names, args, strict=True)}
        else:
            given = kwargs
        return {**self._given(), **check_label_dict(given, family.label_names, family.name)}

    def _labels_slow(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], key: Any = None, cached: bool = True
    ) -> Self:
        """``labels()`` past its cache: ``key`` is the one it tried (None: none made)."""
        family = self._family
        if args and kwargs:
            self._resolve(args, kwargs)  # raises: a mix of forms
        single = len(args) == 1 and isinstance(args[0], Mapping)
        # Positional values are the labels a handle lacks: a cache of their own, so that
        # a child's labels("a", "b") stays an error (the metric's, lacking every label,
        # is its family's dict of children, as its other cache is).
        positional = bool(args) and not single
        given: Iterable[Any]  # the values in the key, in its order
        named: Mapping[Any, Any] = args[0] if single else kwargs
        by_values = False  # the key is the values of every label, in declared order
        if positional:
            key = given = args
        elif named.__class__ is dict and len(named) == family.width:
            try:  # as in labels(): every name given, the values in declared order
                key = given = family.values_of(named) if key is None else key
                by_values = True
            except KeyError:  # an unknown name (refused below)
                key = tuple(named.items())
                given = named.values()
        else:  # some names, or another mapping (a defaultdict would grow): pairs as given
            key = tuple(named.items())
            given = named.values()
        cache = (self._pos_cache if positional else self._cache) or {}
        # All-str keys go in the fast cache. 1, 1.0 and True are equal as keys but
        # render as different label values, so other keys go in with their classes
        # (floats never: -0.0 == 0.0 renders differently too).
        classes = tuple(v.__class__ for v in given)
        if all(c is str for c in classes):
            store: Any = key
        elif not cached or float in classes:
            store = None
        else:
            store = (_TYPED, key, classes)
            try:
                return cache[store]  # type: ignore[no-any-return]
            except (KeyError, TypeError):  # TypeError: unhashable (refused below)
                pass
        merged = self._resolve(args, kwargs)
        pairs = family.canonical(merged)
        # a child's own key: its series' label values, or (a partial one) its label pairs
        values: Values | None
        if by_values and store is key:  # every label given, as str: what `merged` holds
            values = key
        elif len(merged) == family.width:
            values = family.values_of(merged)
        else:
            values = tuple([v for _, v in pairs]) if len(pairs) == family.width else None
        own: Any = pairs if values is None else values
        with family.lock:  # remove() clears the caches under the same lock
            handle = family.handles.get(own)
            root = family.root() if family.root is not None else None
            if (
                handle is None
                and values is not None
                and root is not None
                and root._series is not None
                and root._series is family.found(values)
            ):
                handle = root  # the metric itself: its defaults fill every label
            if handle is None:
                if values is not None and family.full_for(values):
                    # Full: the overflow series, and nothing cached for these labels.
                    overflow = dict(zip(family.label_names, family.overflow_values, strict=True))
                    return self._labels_slow((), overflow, cached=False)
                handle = self.__class__.__new__(self.__class__)
                handle._bind(family, merged, pairs)
                family.keep(own if values is None else handle._series.labels.values, handle)
            # the metric itself is never cached by a child, nor a handle by itself: cycles
            if store is not None and handle is not self and handle is not root:
                cache = self._cache_for(positional)
                if values is not None and store == values:
                    store = handle._series.labels.values  # the series' own tuple: less memory
                elif cache is family.handles:
                    family.aliases.append(store)  # not a child's own key: remove() drops it
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
        if len(pairs) != family.width:
            raise LabelValidationException("remove() needs a value for every label")
        family.remove([tuple([v for _, v in pairs])])

    def remove_by_labels(self, labels: Mapping[str, str]) -> None:
        """Stop exposing every series whose labels include all of ``labels``."""
        if not isinstance(labels, Mapping):
            raise TypeError("labels must be a dict of label names to values")
        family = self._family
        wanted = set(check_label_dict(labels, family.label_names, family.name).items())
        if wanted:
            names = family.label_names
            family.remove(
                [v for v in family.series_values() if wanted <= set(zip(names, v, strict=True))]
            )

    def clear(self) -> None:
        """Stop exposing every labeled series (the default-labels series stays)."""
        family = self._family
        keep = tuple([v for _, v in family.canonical({})])  # the metric's own series, if any
        family.remove([v for v in family.series_values() if v != keep])

    def _check_observable(self) -> Any:
        if self._series is None:
            self._cells[BASE]  # raises UnobservableMetricException with the missing labels
        return self._series

    @property
    def _metric_value_backend(self) -> Backend:
        """The backend this metric records into (pytheus' attribute, kept for its samples)."""
        return get_backend()

    def __repr__(self) -> str:
        given = self._given() if self._labels is not None or self._series is not None else {}
        labels = f", labels={given}" if given else ""
        return f"{self.__class__.__name__}({self.name!r}{labels})"
