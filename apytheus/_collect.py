"""COLLECT: read every series of a registry through the backend and build families.

A custom collector that raises is logged and counted in
``apytheus_collector_errors_total``; the rest of the scrape is served. Custom
collectors may also yield prometheus_client's families (``GaugeMetricFamily``
and the like): they are read by their shape, as apytheus never imports
prometheus_client.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import anyio.lowlevel

from ._family import SUFFIXES, Family, family_of
from ._labels import LabelSet, check_label_names, check_metric_name, label_value
from ._samples import MetricFamily, Sample, build_family, counter_family
from .backends._current import current
from .backends._protocol import MetricSpec, Series
from .backends._series import Exemplar
from .registry import REGISTRY, Registry, RestrictedRegistry

log = logging.getLogger("apytheus")

_errors_lock = threading.Lock()
# Failures per registry (the proxy resolved to the registry behind it), so a
# collector failing in one registry is reported only by that registry.
_errors: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()
# The (collector, family) clashes logged already, per registry: logged once each.
_clashes_logged: weakref.WeakKeyDictionary[Any, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


def _owner(registry: Registry) -> Any:
    """The registry itself behind a proxy or a restricted view."""
    seen = 0
    while hasattr(registry, "registry") and seen < 8:  # the proxy, a RestrictedRegistry
        registry, seen = registry.registry, seen + 1
    return registry


def _restrict(
    registry: Registry, names: frozenset[str] | None
) -> tuple[Registry, frozenset[str] | None]:
    """A restricted view becomes its registry and a name filter (both filters apply)."""
    while isinstance(registry, RestrictedRegistry):
        names = registry.names if names is None else names & registry.names
        registry = registry.registry
    return registry, names


def _failed(registry: Registry, collector: Any, exc: BaseException) -> None:
    name = str(getattr(collector, "name", None) or type(collector).__name__)
    log.error("apytheus: collector %s failed; serving the other metrics", name, exc_info=exc)
    with _errors_lock:
        counts = _errors.setdefault(_owner(registry), {})
        counts[name] = counts.get(name, 0) + 1


def _errors_family(registry: Registry) -> list[MetricFamily]:
    with _errors_lock:
        counts = dict(_errors.get(_owner(registry), {}))
    if not counts:
        return []
    return [
        counter_family(
            "apytheus_collector_errors",
            "Collections that failed, by collector (their metrics were left out).",
            "collector",
            counts,
        )
    ]


# A family not built yet (its series, to be turned into samples in chunks), or a
# family a custom collector already built.
Part = tuple[Family, str, Sequence[Series]] | MetricFamily


def _split(registry: Registry, names: frozenset[str] | None) -> tuple[list[Any], list[MetricSpec]]:
    prefix = registry.prefix
    items = [
        i
        for i in registry.collect()
        if names is None or not isinstance(i, Family) or names.intersection(i.sample_names(prefix))
    ]
    specs = [i.spec for i in items if isinstance(i, Family) and i.attached]
    return items, specs


def _parts(
    registry: Registry,
    items: list[Any],
    data: Mapping[MetricSpec, Sequence[Series]],
    custom: dict[int, list[Any]],
    openmetrics: bool,
    names: frozenset[str] | None,
) -> list[Part]:
    prefix = registry.prefix
    out: list[Part] = []
    health: list[MetricFamily] = []
    if _owner(registry) is _owner(REGISTRY):
        found = getattr(current(), "health_families", None)  # a backend's own health metrics
        if callable(found):
            health = found()
    # Names already exposed: a custom collector's family that repeats one is left out
    # (Prometheus refuses a whole scrape that has a family twice).
    taken = {n for i in items if isinstance(i, Family) for n in i.sample_names(prefix)}
    taken.update(_LIBRARY_FAMILIES)
    taken.update(n for f in health for n in _exposed(f))
    for item in items:
        if isinstance(item, Family):
            name = f"{prefix}_{item.name}" if prefix else item.name
            found = data.get(item.spec, ()) if item.attached else item.local_series()
            out.append((item, name, found))
            continue
        for produced in custom.get(id(item), ()):
            if isinstance(produced, MetricFamily):
                built = [produced]
            elif (fam := family_of(produced)) is not None:
                built = [build_family(fam, fam.name, fam.local_series(), openmetrics)]
            else:
                try:
                    converted = _client_families(produced, openmetrics)
                except (AttributeError, TypeError, ValueError) as exc:  # family-like, invalid
                    _failed(registry, item, exc)
                    continue
                if converted is None:
                    failure = TypeError(f"collect() yielded {produced!r}, not a metric")
                    _failed(registry, item, failure)
                    continue
                built = converted
            exposed = {n for f in built for n in _exposed(f)}
            if exposed & taken:
                _clashed(registry, item, built[0].name)
                continue
            taken |= exposed
            out.extend(built)
    out.extend(_errors_family(registry))
    overflow = {i.name: i.overflowed for i in items if isinstance(i, Family) and i.overflowed}
    if overflow:
        out.append(
            counter_family(
                "apytheus_series_overflow",
                "Label sets recorded in a metric's overflow series because it had max_series.",
                "metric",
                overflow,
            )
        )
    out.extend(health)
    if names is None:
        return out
    return [p for p in out if not isinstance(p, MetricFamily) or _named(p, names)]


# The library's own families, which a custom collector may not repeat.
_LIBRARY_FAMILIES = frozenset(
    n
    for name in ("apytheus_collector_errors", "apytheus_series_overflow")
    for n in (name, name + "_total", name + "_created")
)


def _exposed(family: MetricFamily) -> set[str]:
    """Every name ``family`` puts in an exposition: its own, its type's and its samples'."""
    kind = family.type if family.type in SUFFIXES else "gauge"
    found = {family.name, *(family.name + s for s in SUFFIXES[kind])}
    found.update(s.name for s in family.samples)
    return found


def _clashed(registry: Registry, collector: Any, name: str) -> None:
    """A collector's family repeats a name already exposed: count it, log it once."""
    who = str(getattr(collector, "name", None) or type(collector).__name__)
    with _errors_lock:
        owner = _owner(registry)
        counts = _errors.setdefault(owner, {})
        counts[who] = counts.get(who, 0) + 1
        logged = _clashes_logged.setdefault(owner, set())
        first = (who, name) not in logged
        logged.add((who, name))
    if first:
        log.error(
            "apytheus: collector %s yields a family %r whose names are already exposed; "
            "it is left out of every scrape (counted in apytheus_collector_errors_total)",
            who,
            name,
        )


# Types whose ``_created`` samples prometheus_client's text format shows as a gauge of
# their own; apytheus shows ``_created`` in OpenMetrics only, so the text leaves them out.
_CREATED_KINDS = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
# The (sample suffix, type) pairs that may carry an exemplar in OpenMetrics.
_EXEMPLAR_SAMPLES = frozenset(
    {("_total", "counter"), ("_bucket", "histogram"), ("_bucket", "gaugehistogram")}
)
# Samples that prometheus_client's text format moves into gauges after their family.
_OPENMETRICS_ONLY = ("_created", "_gcount", "_gsum")


def _client_families(obj: Any, openmetrics: bool) -> list[MetricFamily] | None:
    """A prometheus_client-style family (``GaugeMetricFamily``…) as `MetricFamily` objects.

    Duck-typed: ``name``, ``documentation``, ``type`` and ``samples`` whose
    items have ``name``, ``labels`` and ``value``. None when ``obj`` has not
    that shape; `ValueError` / `TypeError` when names or values are invalid.
    The text format is prometheus_client's: labels sorted, ``_gcount`` and
    ``_gsum`` as gauges of their own (but no ``_created``, as for apytheus'
    metrics). Sample timestamps and units are dropped (apytheus' encoders have
    none), and so are exemplars without a timestamp or on a sample that
    OpenMetrics gives none (``_created``, say), and native histogram samples,
    which neither text format can carry.
    """
    try:
        name, documentation, kind, raw = obj.name, obj.documentation, obj.type, obj.samples
    except AttributeError:
        return None
    if not all(isinstance(x, str) for x in (name, documentation, kind)):
        return None
    check_metric_name(name)
    samples: list[Sample] = []
    moved: dict[str, list[Sample]] = {}
    for s in raw:
        if getattr(s, "native_histogram", None) is not None:
            continue  # neither text format can carry it (prometheus_client leaves it out too)
        given = dict(s.labels)
        names = sorted(check_label_names(given))
        labels = LabelSet(tuple((n, label_value(n, given[n])) for n in names))
        sample_name = check_metric_name(s.name)
        suffix = sample_name[len(name) :] if sample_name.startswith(name) else ""
        # OpenMetrics allows exemplars on a counter's _total and on buckets only
        # (never on _created, say): any other would make the whole scrape invalid
        exemplar = None
        if openmetrics and (suffix, kind) in _EXEMPLAR_SAMPLES:
            exemplar = _client_exemplar(getattr(s, "exemplar", None))
        sample = Sample(sample_name, labels, float(s.value), exemplar)
        if openmetrics or suffix not in _OPENMETRICS_ONLY:
            samples.append(sample)
        elif suffix != "_created" or kind not in _CREATED_KINDS:
            moved.setdefault(suffix, []).append(sample)
    if openmetrics:
        return [MetricFamily(name, documentation, kind, samples)]
    kind = {"gaugehistogram": "histogram"}.get(kind, kind)  # prometheus_client's text names
    families = [MetricFamily(name, documentation, kind, samples)]
    for suffix, found in sorted(moved.items()):
        families.append(MetricFamily(name + suffix, documentation, "gauge", found))
    return families


def _client_exemplar(exemplar: Any) -> Exemplar | None:
    """A prometheus_client ``Exemplar`` as apytheus' (None without a timestamp)."""
    if exemplar is None or getattr(exemplar, "timestamp", None) is None:
        return None
    given = dict(exemplar.labels)
    names = check_label_names(given)
    pairs = tuple((n, label_value(n, given[n])) for n in names)
    return Exemplar(LabelSet(pairs), float(exemplar.value), float(exemplar.timestamp))


def _named(family: MetricFamily, names: frozenset[str]) -> bool:
    return any(s.name in names for s in family.samples) or family.name in names


def _call_collect(item: Any) -> Any:
    """Call ``item.collect()``; also a ``collect`` written without ``self`` (pytheus' README)."""
    method = getattr(type(item), "collect", None)
    if inspect.isfunction(method) and not inspect.signature(method).parameters:
        return method()
    return item.collect()


def _run_custom_sync(registry: Registry, item: Any) -> list[Any] | None:
    try:
        result = _call_collect(item)
        if inspect.isawaitable(result):
            result = _await_in_thread(result)
        return list(result)
    except Exception as exc:
        _failed(registry, item, exc)
        return None


def _await_in_thread(awaitable: Any) -> Any:
    """Run an async collector from sync code (a thread of its own: no loop clash)."""
    box: dict[str, Any] = {}

    async def runner() -> None:
        box["result"] = await awaitable

    def target() -> None:
        try:
            anyio.run(runner)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="apytheus-collect")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def collect_sync(
    registry: Registry, openmetrics: bool, names: frozenset[str] | None = None
) -> list[MetricFamily]:
    """Collect every family of ``registry`` (blocking), or those exposing one of ``names``."""
    registry, names = _restrict(registry, names)
    items, specs = _split(registry, names)
    data = current().collect(specs) if specs else {}
    custom: dict[int, list[Any]] = {}
    for item in items:
        if not isinstance(item, Family):
            produced = _run_custom_sync(registry, item)
            if produced is not None:
                custom[id(item)] = produced
    return [
        p if isinstance(p, MetricFamily) else build_family(p[0], p[1], p[2], openmetrics)
        for p in _parts(registry, items, data, custom, openmetrics, names)
    ]


async def collect_async(
    registry: Registry, openmetrics: bool, names: frozenset[str] | None = None
) -> list[Part]:
    """Collect without blocking the event loop; families come unbuilt, to render in chunks."""
    registry, names = _restrict(registry, names)
    items, specs = _split(registry, names)
    data = await current().acollect(specs) if specs else {}
    custom: dict[int, list[Any]] = {}
    for item in items:
        if isinstance(item, Family):
            continue
        try:
            result = _call_collect(item)
            if inspect.isawaitable(result):
                result = await result
            custom[id(item)] = list(result)
        except Exception as exc:
            _failed(registry, item, exc)
        await anyio.lowlevel.checkpoint()
    return _parts(registry, items, data, custom, openmetrics, names)
