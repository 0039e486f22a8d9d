"""EXPOSE: render a registry in a text format, in one piece or without blocking the loop.

The default registry also shows the backend's own health families (a Redis
backend's flush errors, say).
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio.lowlevel

from .._collect.build import build_family
from .._collect.read import collect_async, collect_sync
from .._samples import MetricFamily
from ..registry import REGISTRY, Registry, health_families
from .formats import encode_openmetrics, encode_text

_CHUNK = 2000  # series (and samples) rendered between two yields to the event loop


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
    families = collect_sync(registry, openmetrics, _names(names), health_families(registry))
    return encode_openmetrics(families) if openmetrics else encode_text(families)


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
    for part in parts:
        if isinstance(part, MetricFamily):
            out.append(
                encode_openmetrics([part], eof=False) if openmetrics else encode_text([part])
            )
            continue
        family, name, series = part
        for start in range(0, max(len(series), 1), _CHUNK):
            built = build_family(family, name, series[start : start + _CHUNK], openmetrics)
            head = start == 0
            out.append(
                encode_openmetrics([built], eof=False, headers=head)
                if openmetrics
                else encode_text([built], headers=head)
            )
            done += len(built.samples)
            if done >= _CHUNK:
                done = 0
                await anyio.lowlevel.checkpoint()
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out)


def _names(names: Iterable[str] | None) -> frozenset[str] | None:
    if names is None or isinstance(names, str):
        return None if names is None else frozenset((names,))
    return frozenset(names)
