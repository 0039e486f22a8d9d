"""COLLECT: one backend read for every metric of a registry, plus its custom collectors.

The scrape's families come in registration order: registered metrics (their
series, from the backend, not built yet), then what custom collectors yield,
then the library's own families. A custom collector's family that repeats a
name already exposed, as the scrape's escaping writes names, is left out
(Prometheus refuses a whole scrape that has a family twice).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import anyio.lowlevel

from .._names import UNDERSCORES, escape_metric_name
from .._record.family import SUFFIXES, Family
from .._samples import MetricFamily, counter_family
from ..backends._current import current
from ..backends._protocol import MetricSpec, Series, SupportsValuesOnly
from . import custom
from .build import build_family
from .source import Source, restrict

# A family not built yet (its series, to be turned into samples in chunks), or a
# family a custom collector already built.
Part = tuple[Family, str, Sequence[Series]] | MetricFamily

# The library's own families, which a custom collector may not repeat.
_LIBRARY_FAMILIES = frozenset(
    n
    for name in ("apytheus_collector_errors", "apytheus_series_overflow")
    for n in (name, name + "_total", name + "_created")
)


def collect_sync(
    registry: Source,
    openmetrics: bool,
    names: frozenset[str] | None = None,
    extra: Sequence[MetricFamily] = (),
) -> list[MetricFamily]:
    """Every family of ``registry`` (blocking), or those exposing one of ``names``.

    ``extra`` families (a backend's health) go last, and no collector may repeat them.
    """
    return [
        p if isinstance(p, MetricFamily) else build_family(p[0], p[1], p[2], openmetrics)
        for p in collect_parts(registry, openmetrics, names, extra)
    ]


def collect_parts(
    registry: Source,
    openmetrics: bool,
    names: frozenset[str] | None = None,
    extra: Sequence[MetricFamily] = (),
    escaping: str = UNDERSCORES,
) -> list[Part]:
    """`collect_sync`, with the registered metrics' families not built yet (to render in chunks)."""
    registry, names = restrict(registry, names)
    items, specs = _split(registry, names)
    data: Mapping[MetricSpec, Sequence[Series]] = {}
    if specs:
        backend, values_only = _backend(openmetrics)
        data = backend.collect_values(specs) if values_only else backend.collect(specs)
    produced: dict[int, list[Any]] = {}
    for item in items:
        if not isinstance(item, Family):
            found = custom.run_sync(registry, item)
            if found is not None:
                produced[id(item)] = found
    return _parts(registry, items, data, produced, openmetrics, names, extra, escaping)


async def collect_async(
    registry: Source,
    openmetrics: bool,
    names: frozenset[str] | None = None,
    extra: Sequence[MetricFamily] = (),
    escaping: str = UNDERSCORES,
) -> list[Part]:
    """Collect without blocking the event loop; families come unbuilt, to render in chunks."""
    registry, names = restrict(registry, names)
    items, specs = _split(registry, names)
    data: Mapping[MetricSpec, Sequence[Series]] = {}
    if specs:
        backend, values_only = _backend(openmetrics)
        data = await (backend.acollect_values(specs) if values_only else backend.acollect(specs))
    produced: dict[int, list[Any]] = {}
    for item in items:
        if isinstance(item, Family):
            continue
        found = await custom.run_async(registry, item)
        if found is not None:
            produced[id(item)] = found
        await anyio.lowlevel.checkpoint()
    return _parts(registry, items, data, produced, openmetrics, names, extra, escaping)


def _backend(openmetrics: bool) -> tuple[Any, bool]:
    """The process' backend, and whether it may skip creation times (the text format has none)."""
    backend = current()
    return backend, not openmetrics and isinstance(backend, SupportsValuesOnly)


def _split(registry: Source, names: frozenset[str] | None) -> tuple[list[Any], list[MetricSpec]]:
    prefix = registry.prefix
    items = [
        i
        for i in registry.collect()
        if names is None or not isinstance(i, Family) or names.intersection(i.sample_names(prefix))
    ]
    specs = [i.spec for i in items if isinstance(i, Family) and i.attached]
    return items, specs


def _parts(
    registry: Source,
    items: list[Any],
    data: Mapping[MetricSpec, Sequence[Series]],
    produced: dict[int, list[Any]],
    openmetrics: bool,
    names: frozenset[str] | None,
    extra: Sequence[MetricFamily],
    escaping: str,
) -> list[Part]:
    prefix = registry.prefix
    out: list[Part] = []

    def exposed(found: Iterable[str]) -> set[str]:
        return {escape_metric_name(n, escaping) for n in found}

    # Names already exposed, as the scrape writes them: a custom collector's
    # family that repeats one is left out.
    taken = exposed(n for i in items if isinstance(i, Family) for n in i.sample_names(prefix))
    taken.update(exposed(_LIBRARY_FAMILIES))
    taken.update(exposed(n for f in extra for n in _exposed(f)))
    for item in items:
        if isinstance(item, Family):
            name = f"{prefix}_{item.name}" if prefix else item.name
            found = data.get(item.spec, ()) if item.attached else item.local_series()
            out.append((item, name, found))
            continue
        for built in custom.families(registry, item, produced.get(id(item), []), openmetrics):
            names_of = exposed(n for f in built for n in _exposed(f))
            if names_of & taken:
                custom.clashed(registry, item, built[0].name)
                continue
            taken |= names_of
            out.extend(built)
    out.extend(custom.errors_family(registry))
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
    out.extend(extra)
    if names is None:
        return out
    return [p for p in out if not isinstance(p, MetricFamily) or _named(p, names)]


def _exposed(family: MetricFamily) -> set[str]:
    """Every name ``family`` puts in an exposition: its own, its type's and its samples'."""
    kind = family.type if family.type in SUFFIXES else "gauge"
    found = {family.name, *(family.name + s for s in SUFFIXES[kind])}
    found.update(s.name for s in family.samples)
    return found


def _named(family: MetricFamily, names: frozenset[str]) -> bool:
    return any(s.name in names for s in family.samples) or family.name in names
