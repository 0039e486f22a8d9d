"""EXPOSE: render a registry in a text format, in one piece or without blocking the loop.

The default registry also shows the backend's own health families (a Redis
backend's flush errors, say).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import anyio
import anyio.lowlevel

from .._collect.read import Part, collect_async, collect_parts
from .._names import ESCAPINGS, UNDERSCORES
from .._samples import MetricFamily
from ..registry import REGISTRY, Registry, health_families
from .chunks import built_chunks, classic_names
from .formats import encode_openmetrics, encode_text
from .negotiate import Format, negotiate
from .render_protobuf import protobuf_chunks

T = TypeVar("T", str, bytes)

_YIELD_EVERY = 2000  # samples rendered between two yields to the event loop


def generate_metrics(
    registry: Registry = REGISTRY,
    openmetrics: bool = False,
    names: Iterable[str] | None = None,
    escaping: str = UNDERSCORES,
) -> str:
    """Render every metric of ``registry`` (blocking; for WSGI apps and scripts).

    Args:
        registry: what to render.
        openmetrics: OpenMetrics 1.0.0 instead of the Prometheus text format 0.0.4.
        names: only the metrics exposing one of these sample names (``name[]``).
        escaping: how names outside the classic set are written: ``underscores``
            (the default), ``dots``, ``values``, or ``allow-utf-8`` (quoted).

    Examples:
        >>> from apytheus import CollectorRegistry, Gauge, generate_metrics
        >>> registry = CollectorRegistry()
        >>> Gauge("queue_size", "Jobs waiting", registry=registry).set(3)
        >>> print(generate_metrics(registry), end="")
        # HELP queue_size Jobs waiting
        # TYPE queue_size gauge
        queue_size 3.0
    """
    fmt = _text_format(openmetrics, escaping)
    health = health_families(registry)
    parts = collect_parts(registry, openmetrics, _names(names), health, fmt.escaping)
    return "".join(text for text, _ in _text_chunks(parts, fmt))


async def agenerate_metrics(
    registry: Registry = REGISTRY,
    openmetrics: bool = False,
    names: Iterable[str] | None = None,
    escaping: str = UNDERSCORES,
) -> str:
    """Render every metric of ``registry`` without blocking the event loop.

    Collects through the backend's async path (a Redis backend first flushes
    this worker's buffer, in a worker thread), then turns series into text a
    chunk at a time, yielding to the loop in between: other requests keep
    being served during a scrape of any size.

    Args: as for `generate_metrics`.
    """
    fmt = _text_format(openmetrics, escaping)
    health = health_families(registry)
    parts = await collect_async(registry, openmetrics, _names(names), health, fmt.escaping)
    return "".join(await _paced(_text_chunks(parts, fmt)))


def render(
    registry: Registry = REGISTRY,
    accept: str | None = None,
    names: Iterable[str] | None = None,
    *,
    protobuf: bool = True,
) -> tuple[bytes, str]:
    """The body and Content-Type for the best format an ``Accept`` header allows (blocking).

    By q-value: protobuf, OpenMetrics 1.0.0, text 1.0.0 / 0.0.4, with the names
    escaped as the chosen media type's ``escaping=`` asks (see
    `apytheus.exposition.negotiate`). No header, or one naming nothing
    apytheus writes: text 0.0.4.

    Args:
        registry: what to render.
        accept: the request's ``Accept`` header, as Prometheus sends it.
        names: only the metrics exposing one of these sample names (``name[]``).
        protobuf: False never picks protobuf.

    Examples:
        >>> from apytheus import CollectorRegistry, Counter
        >>> from apytheus.exposition import render
        >>> registry = CollectorRegistry()
        >>> Counter("http.requests", "Requests", registry=registry).inc()
        >>> body, content_type = render(registry, "text/plain;version=1.0.0;escaping=allow-utf-8")
        >>> content_type
        'text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8'
        >>> print(body.decode(), end="")
        # HELP "http.requests_total" Requests
        # TYPE "http.requests_total" counter
        {"http.requests_total"} 1.0
    """
    fmt = negotiate(accept, protobuf)
    return render_format(registry, fmt, names), fmt.content_type


async def arender(
    registry: Registry = REGISTRY,
    accept: str | None = None,
    names: Iterable[str] | None = None,
    *,
    protobuf: bool = True,
) -> tuple[bytes, str]:
    """`render` without blocking the event loop (as `agenerate_metrics` does)."""
    fmt = negotiate(accept, protobuf)
    return await arender_format(registry, fmt, names), fmt.content_type


def render_format(registry: Registry, fmt: Format, names: Iterable[str] | None) -> bytes:
    """The body of ``registry`` in a negotiated format (blocking)."""
    health = health_families(registry)
    parts = collect_parts(registry, fmt.kind != "text", _names(names), health, fmt.escaping)
    return b"".join(chunk for chunk, _ in _chunks(parts, fmt))


async def arender_format(registry: Registry, fmt: Format, names: Iterable[str] | None) -> bytes:
    """The body of ``registry`` in a negotiated format, yielding to the loop as it goes."""
    health = health_families(registry)
    parts = await collect_async(registry, fmt.kind != "text", _names(names), health, fmt.escaping)
    return b"".join(await _paced(_chunks(parts, fmt)))


async def _paced(chunks: Iterator[tuple[T, int]]) -> list[T]:
    """Every chunk, yielding to the event loop after each `_YIELD_EVERY` samples or so."""
    out: list[T] = []
    done = 0
    for chunk, samples in chunks:
        out.append(chunk)
        done += samples
        if done >= _YIELD_EVERY:
            done = 0
            await anyio.lowlevel.checkpoint()
    return out


def _text_format(openmetrics: bool, escaping: str) -> Format:
    if escaping not in ESCAPINGS:
        raise ValueError(f"unknown escaping {escaping!r}; choose one of {list(ESCAPINGS)}")
    return Format("openmetrics" if openmetrics else "text", "", escaping)


def _chunks(parts: list[Part], fmt: Format) -> Iterator[tuple[bytes, int]]:
    """The body of ``parts`` in ``fmt``, a chunk at a time, with each chunk's sample count."""
    if fmt.kind == "protobuf":
        yield from protobuf_chunks(parts, fmt.escaping)
        return
    for text, samples in _text_chunks(parts, fmt):
        yield text.encode(), samples


def _text_chunks(parts: list[Part], fmt: Format) -> Iterator[tuple[str, int]]:
    """The text of ``parts``, a chunk at a time, with how many samples each chunk has.

    A chunk holds about `CHUNK_SAMPLES` samples: they are all freed before the
    next chunk is built, so a scrape never keeps more than a few hundred
    objects alive at once. The garbage collector then finds nothing to promote
    while a scrape runs (a bigger chunk made it walk the whole heap, every few
    scrapes, at 100k series).
    """
    openmetrics = fmt.kind == "openmetrics"
    escaping = fmt.escaping
    for part in parts:
        if isinstance(part, MetricFamily):
            text = (
                encode_openmetrics([part], eof=False, escaping=escaping)
                if openmetrics
                else encode_text([part], escaping=escaping)
            )
            yield text, len(part.samples)
            continue
        family, name, series = part
        classic = classic_names(family, name, escaping)
        for built, head in built_chunks(family, name, series, openmetrics):
            if openmetrics:
                text = encode_openmetrics(
                    [built], eof=False, headers=head, escaping=escaping, classic=classic
                )
            else:
                text = encode_text([built], headers=head, escaping=escaping, classic=classic)
            yield text, len(built.samples)
    if openmetrics:
        yield "# EOF\n", 0


def _names(names: Iterable[str] | None) -> frozenset[str] | None:
    if names is None or isinstance(names, str):
        return None if names is None else frozenset((names,))
    return frozenset(names)
