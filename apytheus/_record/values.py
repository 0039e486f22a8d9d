"""RECORD: what a value, an amount, an exemplar, a bucket layout or an option must be (checks)."""

from __future__ import annotations

import math
import numbers
import re
import reprlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .._labels import LabelSet, check_label_dict, check_label_names, check_metric_name
from .._samples import Exemplar
from ..exceptions import BucketException

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""Histogram upper bounds (seconds) used when none are given; ``+Inf`` is added."""

MULTIPROCESS_MODES = frozenset(
    {"sum", "livesum", "max", "livemax", "min", "livemin"}
    | {"mostrecent", "livemostrecent", "all", "liveall"}
)


def number(value: object, what: str) -> float:
    """Slow path of value checks: real numbers but bool become floats, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        shown = reprlib.repr(value)
        raise TypeError(f"{what} must be a number, not {type(value).__name__} ({shown})")
    try:
        return float(value)
    except OverflowError:
        size = f"a {value.bit_length()}-bit int" if isinstance(value, int) else reprlib.repr(value)
        raise ValueError(f"{what} is too large for a float ({size})") from None


def either(amount: float, value: float) -> float:
    """``value=`` (pytheus' name) given: the amount, unless ``amount`` was given too."""
    if amount.__class__ in (int, float) and amount == 1:  # 1 is the default: not given
        return value
    raise TypeError(f"give the amount or value=, not both (got {amount!r} and value={value!r})")


def exemplar_of(labels: object, value: float) -> Exemplar:
    """An exemplar of ``value`` with ``labels`` (checked: names, values, 128 characters)."""
    if not isinstance(labels, Mapping):
        raise TypeError("exemplar must be a dict of label names to string values")
    names = check_label_names(labels)
    pairs = tuple(sorted(check_label_dict(labels, names, "exemplar").items()))
    if sum(len(k) + len(v) for k, v in pairs) > 128:
        raise ValueError("exemplar labels may hold at most 128 characters (OpenMetrics)")
    return Exemplar(LabelSet.from_pairs(pairs), value, time.time())


def check_buckets(buckets: Iterable[float] | None) -> tuple[float, ...]:
    """Histogram bounds, sorted and without ``+Inf``; empty or None gives the defaults."""
    if buckets is None:
        return DEFAULT_BUCKETS
    if isinstance(buckets, (str, bytes)) or not isinstance(buckets, Iterable):
        raise BucketException(f"buckets must be a sequence of numbers, not {buckets!r}")
    given = list(buckets)  # read once: it may be an iterator
    bounds = [bucket_bound(b) for b in given]
    if bounds and bounds[-1] == math.inf:
        bounds.pop()
    if not given:
        return DEFAULT_BUCKETS
    if any(b >= c for b, c in zip(bounds[:-1], bounds[1:], strict=True)):
        raise BucketException(f"buckets must be strictly increasing, got {given}")
    if any(math.isinf(b) for b in bounds):
        raise BucketException("only the last bucket may be +Inf")
    return tuple(bounds)


def bucket_bound(bound: object) -> float:
    """One bucket bound as a float (not NaN), else `BucketException`."""
    try:
        value = number(bound, "bucket bound")
    except TypeError as exc:
        raise BucketException(str(exc)) from None
    if math.isnan(value):
        raise BucketException("bucket bounds must not be NaN")
    return value


def check_states(states: object, name: str, registry: Any) -> tuple[tuple[str, ...], str]:
    """An Enum's states (distinct strings, any iterable) and its exposed name (no ``:``)."""
    if isinstance(states, str) or not isinstance(states, Iterable):
        raise ValueError("Enum needs states: a non-empty list of strings")
    found = tuple(states)  # any iterable (a generator is read once)
    if not found or not all(isinstance(s, str) for s in found):
        raise ValueError("Enum needs states: a non-empty list of strings")
    if len(set(found)) != len(found):
        raise ValueError(f"Enum states must be distinct, got {list(found)}")
    prefix = getattr(registry, "prefix", None) if registry is not None else None
    exposed = f"{prefix}_{name}" if isinstance(prefix, str) and prefix else name
    if isinstance(exposed, str) and ":" in exposed:
        raise ValueError(
            f"Enum name {exposed!r} must not contain ':': it also names the state label"
        )
    return found, exposed


_UNIT = re.compile(r"[A-Za-z0-9_]+")


def check_unit(unit: object, kind: str) -> str:
    """A metric's unit: '' for none, else letters, digits and ``_`` (``seconds``, ``bytes``)."""
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a string, not {type(unit).__name__}")
    if unit and _UNIT.fullmatch(unit) is None:
        raise ValueError(f"invalid unit {unit!r}: it must match [A-Za-z0-9_]+")
    if unit and kind in ("info", "stateset"):
        raise ValueError(f"a metric of type {kind} cannot have a unit (got {unit!r})")
    return unit


def with_unit(name: str, unit: str) -> str:
    """``name`` with ``_<unit>`` appended unless it ends with it already (as prometheus_client)."""
    if unit and isinstance(name, str) and not name.endswith("_" + unit):
        return f"{name}_{unit}"
    return name


def check_options(
    name: object, documentation: object, default_labels: object, registry: Any, max_series: object
) -> None:
    """Check the options every metric takes (the label names are checked on their own)."""
    check_metric_name(name)
    if default_labels is not None and not isinstance(default_labels, Mapping):
        raise TypeError(
            f"default_labels of {name!r} must be a dict of label names to values, "
            f"not {type(default_labels).__name__}"
        )
    if registry is not None and not (hasattr(registry, "register") and hasattr(registry, "prefix")):
        raise TypeError(
            f"registry of {name!r} must be a CollectorRegistry (or None), "
            f"not {type(registry).__name__}"
        )
    if max_series is not None and (
        not isinstance(max_series, int) or isinstance(max_series, bool) or max_series < 1
    ):
        raise ValueError(f"max_series must be a positive whole number, got {max_series!r}")
    if not isinstance(documentation, str):
        raise TypeError(f"description of {name!r} must be a string")
