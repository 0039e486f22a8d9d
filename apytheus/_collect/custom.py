"""COLLECT: run custom collectors, read what they yield, count what goes wrong.

A custom collector that raises is logged and counted in
``apytheus_collector_errors_total`` (per registry); the rest of the scrape is
served. Collectors may yield apytheus metrics, `MetricFamily` objects, or
prometheus_client's families (``GaugeMetricFamily`` and the like), read by
their shape: apytheus never imports prometheus_client.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Iterable
from typing import Any

import anyio

from .._labels import LabelSet, check_label_names, check_metric_name, label_value
from .._record.family import family_of
from .._samples import Exemplar, MetricFamily, Sample, counter_family
from .build import build_family
from .source import Source, behind

log = logging.getLogger("apytheus")

_errors_lock = threading.Lock()
# Failures per registry (the proxy resolved to the registry behind it), so a
# collector failing in one registry is reported only by that registry.
_errors: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()
# The (collector, family) clashes logged already, per registry: logged once each.
_clashes_logged: weakref.WeakKeyDictionary[Any, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


def _name(collector: Any) -> str:
    return str(getattr(collector, "name", None) or type(collector).__name__)


def _owner(registry: Source) -> Any:
    """The registry the counts are kept for, or a stand-in one that keeps none.

    A user's registry may be unhashable (a dataclass, say) or not weakly
    referable: its failures are still logged, but not counted.
    """
    owner = behind(registry)
    try:
        weakref.ref(owner)
        hash(owner)
    except TypeError:
        return _NOWHERE
    return owner


class _Nowhere:
    """The owner of the counts of registries that cannot be keys: never shown."""


_NOWHERE = _Nowhere()


def _count(registry: Source, collector: Any) -> None:
    with _errors_lock:
        counts = _errors.setdefault(_owner(registry), {})
        name = _name(collector)
        counts[name] = counts.get(name, 0) + 1


def failed(registry: Source, collector: Any, exc: BaseException) -> None:
    """A collector failed: log it with its traceback, and count it."""
    log.error(
        "apytheus: collector %s failed; serving the other metrics", _name(collector), exc_info=exc
    )
    _count(registry, collector)


def clashed(registry: Source, collector: Any, name: str) -> None:
    """A collector's family repeats a name already exposed: count it, log it once."""
    _count(registry, collector)
    who = _name(collector)
    with _errors_lock:
        logged = _clashes_logged.setdefault(_owner(registry), set())
        first = (who, name) not in logged
        logged.add((who, name))
    if first:
        log.error(
            "apytheus: collector %s yields a family %r whose names are already exposed; "
            "it is left out of every scrape (counted in apytheus_collector_errors_total)",
            who,
            name,
        )


def errors_family(registry: Source) -> list[MetricFamily]:
    """``apytheus_collector_errors_total`` of ``registry``, once something failed."""
    with _errors_lock:
        owner = _owner(registry)
        counts = {} if owner is _NOWHERE else dict(_errors.get(owner, {}))
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


def families(
    registry: Source, collector: Any, produced: list[Any], openmetrics: bool
) -> list[list[MetricFamily]]:
    """What a collector yielded, as families; each inner list is one family (and its parts).

    A yielded object that is no metric, or an invalid family, is counted as a failure.
    """
    out: list[list[MetricFamily]] = []
    for item in produced:
        if isinstance(item, MetricFamily):
            out.append([item])
        elif (family := family_of(item)) is not None:
            out.append([build_family(family, family.name, family.local_series(), openmetrics)])
        else:
            try:
                converted = client_families(item, openmetrics)
            except (AttributeError, TypeError, ValueError) as exc:  # family-like, invalid
                failed(registry, collector, exc)
                continue
            if converted is None:
                failed(registry, collector, TypeError(f"collect() yielded {item!r}, not a metric"))
            else:
                out.append(converted)
    return out


# Types whose ``_created`` samples prometheus_client's text format shows as a gauge of
# their own; apytheus shows ``_created`` in OpenMetrics only, so the text leaves them out.
_CREATED_KINDS = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
# The (sample suffix, type) pairs that may carry an exemplar in OpenMetrics.
_EXEMPLAR_SAMPLES = frozenset(
    {("_total", "counter"), ("_bucket", "histogram"), ("_bucket", "gaugehistogram")}
)
# Samples that prometheus_client's text format moves into gauges after their family.
_OPENMETRICS_ONLY = ("_created", "_gcount", "_gsum")


def client_families(obj: Any, openmetrics: bool) -> list[MetricFamily] | None:
    """A prometheus_client-style family (``GaugeMetricFamily``…) as `MetricFamily` objects.

    Duck-typed: ``name``, ``documentation``, ``type`` and ``samples`` whose
    items have ``name``, ``labels`` and ``value``. None when ``obj`` has not
    that shape; `ValueError` / `TypeError` when names or values are invalid.
    The text format is prometheus_client's: labels sorted, ``_gcount`` and
    ``_gsum`` as gauges of their own (but no ``_created``, as for apytheus'
    metrics). Sample timestamps are dropped (apytheus' encoders have none), and
    so are exemplars without a timestamp or on a sample that
    OpenMetrics gives none (``_created``, say), and native histogram samples,
    which neither text format can carry. A unit is kept when the name ends with it.
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
        labels = LabelSet(tuple(names), tuple([label_value(n, given[n]) for n in names]))
        sample_name = check_metric_name(s.name)
        suffix = sample_name[len(name) :] if sample_name.startswith(name) else ""
        # OpenMetrics allows exemplars on a counter's _total and on buckets only
        # (never on _created, say): any other would make the whole scrape invalid
        exemplar = None
        if openmetrics and (suffix, kind) in _EXEMPLAR_SAMPLES:
            exemplar = client_exemplar(getattr(s, "exemplar", None))
        sample = Sample(sample_name, labels, float(s.value), exemplar)
        if openmetrics or suffix not in _OPENMETRICS_ONLY:
            samples.append(sample)
        elif suffix != "_created" or kind not in _CREATED_KINDS:
            moved.setdefault(suffix, []).append(sample)
    unit = getattr(obj, "unit", "")
    unit = unit if isinstance(unit, str) and name.endswith("_" + unit) else ""
    if openmetrics:
        return [MetricFamily(name, documentation, kind, samples, unit)]
    kind = {"gaugehistogram": "histogram"}.get(kind, kind)  # prometheus_client's text names
    families = [MetricFamily(name, documentation, kind, samples)]
    for suffix, found in sorted(moved.items()):
        families.append(MetricFamily(name + suffix, documentation, "gauge", found))
    return families


def client_exemplar(exemplar: Any) -> Exemplar | None:
    """A prometheus_client ``Exemplar`` as apytheus' (None without a timestamp)."""
    if exemplar is None or getattr(exemplar, "timestamp", None) is None:
        return None
    given = dict(exemplar.labels)
    names = check_label_names(given)
    pairs = tuple((n, label_value(n, given[n])) for n in names)
    return Exemplar(LabelSet.from_pairs(pairs), float(exemplar.value), float(exemplar.timestamp))


def call_collect(item: Any) -> Any:
    """Call ``item.collect()``; also a ``collect`` written without ``self`` (pytheus' README)."""
    method = getattr(type(item), "collect", None)
    if inspect.isfunction(method) and not inspect.signature(method).parameters:
        return method()
    return item.collect()


def run_sync(registry: Source, item: Any) -> list[Any] | None:
    try:
        result = call_collect(item)
        if inspect.isawaitable(result):
            result = _await_in_thread(result)
        return list(result)
    except Exception as exc:
        failed(registry, item, exc)
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


async def run_async(registry: Source, item: Any) -> list[Any] | None:
    """What a collector yields, awaited if it is async (None if it failed)."""
    try:
        result = call_collect(item)
        if inspect.isawaitable(result):
            result = await result
        return list(result)
    except Exception as exc:
        failed(registry, item, exc)
        return None


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
