"""RECORD: the request metrics of the middlewares (ASGI and aiohttp), one set per registry."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from ._collect.source import behind
from ._record.family import watch_cache
from .metrics import Gauge, Histogram
from .registry import Registry

SIZE_BUCKETS = (10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
"""Buckets of the size histograms, in bytes (pytheus' middleware buckets)."""

LABELS = ("method", "route", "status_code")

NATIVE_FACTOR = 1.1
"""The bucket factor of the duration histogram with ``native_histograms`` (schema 3)."""


class RequestMetrics:
    """The middleware's metrics in one registry (shared by middlewares of that registry)."""

    def __init__(
        self,
        registry: Registry | None,
        buckets: Sequence[float],
        extra: Sequence[str],
        native: bool = False,
    ):
        names = [*LABELS, *extra]
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, until the last byte of the response.",
            names,
            registry=registry,
            buckets=buckets,
            native_bucket_factor=NATIVE_FACTOR if native else None,
        )
        self.request_size = Histogram(
            "http_request_size_bytes",
            "Size of HTTP request bodies.",
            names,
            registry=registry,
            buckets=SIZE_BUCKETS,
        )
        self.response_size = Histogram(
            "http_response_size_bytes",
            "Size of HTTP response bodies.",
            names,
            registry=registry,
            buckets=SIZE_BUCKETS,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being answered.",
            ["method"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.extra = tuple(extra)
        # Children by label values, looked up once per request instead of three
        # labels() calls; emptied if series of these metrics are removed.
        self.children: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}
        self.in_progress_by_method: dict[str, Any] = {}
        for metric in (self.duration, self.request_size, self.response_size, self.in_progress):
            watch_cache(metric, self.clear)

    def clear(self) -> None:
        """Forget the cached children (series of these metrics were removed)."""
        self.children.clear()
        self.in_progress_by_method.clear()

    def children_for(self, key: tuple[Any, ...], values: list[str]) -> tuple[Any, Any, Any]:
        """The three histograms' children for one label set (cached)."""
        found = (
            self.duration.labels(*values),
            self.request_size.labels(*values),
            self.response_size.labels(*values),
        )
        self.children[key] = found
        return found

    def in_progress_for(self, method: str) -> Any:
        """The in-progress gauge's child for one method (cached)."""
        found = self.in_progress_by_method[method] = self.in_progress.labels(method=method)
        return found


_shared: weakref.WeakKeyDictionary[Any, RequestMetrics] = weakref.WeakKeyDictionary()


def metrics_for(
    registry: Registry | None, buckets: Sequence[float], extra: tuple[str, ...], native: bool
) -> RequestMetrics:
    """The request metrics of ``registry``: made once per registry, shared by every middleware."""
    if registry is None:
        return RequestMetrics(None, buckets, extra, native)
    key = behind(registry)  # the proxy stands for its registry
    found = _shared.get(key)
    if found is None:
        found = _shared[key] = RequestMetrics(registry, buckets, extra, native)
    elif found.extra != extra:
        raise ValueError(
            f"this registry's request metrics already have extra labels {list(found.extra)}"
        )
    return found
