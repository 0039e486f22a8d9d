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

from ._family import Family, family_of
from ._labels import LabelSet, check_label_names, check_metric_name, label_value
from ._samples import MetricFamily, Sample, build_family, counter_family
from .backends._current import current
from .backends._protocol import MetricSpec, Series
from .backends._series import Exemplar
from .registry import REGISTRY, Registry

log = logging.getLogger("apytheus")

_errors_lock = threading.Lock()
# Failures per registry (the proxy resolved to the registry behind it), so a
# collector failing in one registry is reported only by that registry.
_errors: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()


def _owner(registry: Registry) -> Any:
    return getattr(registry, "registry", registry)


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
    for item in items:
        if isinstance(item, Family):
            name = f"{prefix}_{item.name}" if prefix else item.name
            found = data.get(item.spec, ()) if item.attached else item.local_series()
            out.append((item, name, found))
            continue
        for produced in custom.get(id(item), ()):
            if isinstance(produced, MetricFamily):
                out.append(produced)
                continue
            fam = family_of(produced)
            if fam is None:
                try:
                    converted = _client_families(produced, openmetrics)
                except (AttributeError, TypeError, ValueError) as exc:  # family-like, invalid
                    _failed(registry, item, exc)
                    continue
                if converted is None:
                    failure = TypeError(f"collect() yielded {produced!r}, not a metric")
                    _failed(registry, item, failure)
                else:
                    out.extend(converted)
                continue
            out.append(build_family(fam, fam.name, fam.local_series(), openmetrics))
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
    if registry is REGISTRY or registry is REGISTRY.registry:
        health = getattr(current(), "health_families", None)  # a backend's own health metrics
        if callable(health):
            out.extend(health())
    if names is None:
        return out
    return [p for p in out if not isinstance(p, MetricFamily) or _named(p, names)]


# Types whose ``_created`` samples prometheus_client's text format shows as a gauge of
# their own; apytheus shows ``_created`` in OpenMetrics only, so the text leaves them out.
_CREATED_KINDS = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
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
    none), and so are exemplars without a timestamp.
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
        given = dict(s.labels)
        names = sorted(check_label_names(given))
        labels = LabelSet(tuple((n, label_value(n, given[n])) for n in names))
        exemplar = _client_exemplar(getattr(s, "exemplar", None)) if openmetrics else None
        sample = Sample(check_metric_name(s.name), labels, float(s.value), exemplar)
        suffix = sample.name[len(name) :] if sample.name.startswith(name) else ""
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
