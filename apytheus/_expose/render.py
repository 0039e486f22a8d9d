"""EXPOSE: render a registry in a text format, in one piece or without blocking the loop.

The default registry also shows the backend's own health families (a Redis
backend's flush errors, say).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import anyio
import anyio.lowlevel

from .._collect.build import build_family
from .._collect.read import Part, collect_async, collect_parts
from .._record.family import Family
from .._samples import MetricFamily
from ..registry import REGISTRY, Registry, health_families
from .formats import encode_openmetrics, encode_text

_CHUNK_SAMPLES = 300  # samples built (and freed) at a time
_YIELD_EVERY = 2000  # samples rendered between two yields to the event loop


def generate_metrics(
    registry: Registry = REGISTRY, openmetrics: bool = False, names: Iterable[str] | None = None
) -> str:
    """Render every metric of ``registry`` (blocking; for WSGI apps and scripts).

    Args:
        registry: what to render.
        openmetrics: OpenMetrics 1.0.0 instead of the Prometheus text format 0.0.4.
        names: only the metrics exposing one of these sample names (``name[]``).

    Examples:
        >>> from apytheus import CollectorRegistry, Gauge, generate_metrics
        >>> registry = CollectorRegistry()
        >>> Gauge("queue_size", "Jobs waiting", registry=registry).set(3)
        >>> print(generate_metrics(registry), end="")
        # HELP queue_size Jobs waiting
        # TYPE queue_size gauge
        queue_size 3.0
    """
    parts = collect_parts(registry, openmetrics, _names(names), health_families(registry))
    return "".join(text for text, _ in _chunks(parts, openmetrics))


async def agenerate_metrics(
    registry: Registry = REGISTRY, openmetrics: bool = False, names: Iterable[str] | None = None
) -> str:
    """Render every metric of ``registry`` without blocking the event loop.

    Collects through the backend's async path (a Redis backend first flushes
    this worker's buffer, in a worker thread), then turns series into text a
    chunk at a time, yielding to the loop in between: other requests keep
    being served during a scrape of any size.

    Args:
        registry: what to render.
        openmetrics: OpenMetrics 1.0.0 instead of the Prometheus text format 0.0.4.
        names: only the metrics exposing one of these sample names (``name[]``).
    """
    out: list[str] = []
    done = 0
    parts = await collect_async(registry, openmetrics, _names(names), health_families(registry))
    for text, samples in _chunks(parts, openmetrics):
        out.append(text)
        done += samples
        if done >= _YIELD_EVERY:
            done = 0
            await anyio.lowlevel.checkpoint()
    return "".join(out)


def _chunks(parts: list[Part], openmetrics: bool) -> Iterator[tuple[str, int]]:
    """The text of ``parts``, a chunk at a time, with how many samples each chunk has.

    A chunk holds about `_CHUNK_SAMPLES` samples: they are all freed before the
    next chunk is built, so a scrape never keeps more than a few hundred
    objects alive at once. The garbage collector then finds nothing to promote
    while a scrape runs (a bigger chunk made it walk the whole heap, every few
    scrapes, at 100k series).
    """
    for part in parts:
        if isinstance(part, MetricFamily):
            text = encode_openmetrics([part], eof=False) if openmetrics else encode_text([part])
            yield text, len(part.samples)
            continue
        family, name, series = part
        step = max(1, _CHUNK_SAMPLES // _samples_per_series(family, openmetrics))
        for start in range(0, max(len(series), 1), step):
            built = build_family(family, name, series[start : start + step], openmetrics)
            head = start == 0
            if openmetrics:
                yield encode_openmetrics([built], eof=False, headers=head), len(built.samples)
            else:
                yield encode_text([built], headers=head), len(built.samples)
    if openmetrics:
        yield "# EOF\n", 0


def _samples_per_series(family: Family, openmetrics: bool) -> int:
    kind = family.kind
    if kind in ("histogram", "summary"):
        buckets = len(family.bounds) + 1 if kind == "histogram" else 0
        return buckets + 3
    if kind == "stateset":
        return max(1, len(family.states))
    return 2 if openmetrics and kind == "counter" else 1


def _names(names: Iterable[str] | None) -> frozenset[str] | None:
    if names is None or isinstance(names, str):
        return None if names is None else frozenset((names,))
    return frozenset(names)
