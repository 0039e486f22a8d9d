"""aiohttp integration: a ``/metrics`` request handler and a request-metrics middleware.

`metrics_handler` serves a registry like `apytheus.exposition.make_asgi_app` does
(format from ``Accept``, gzip when ``Accept-Encoding`` allows it, 503 when the backend's
store is unreachable). `metrics_middleware` records the request metrics of
`apytheus.middleware.MetricsMiddleware`, labeled by aiohttp's route template.
`apytheus_cleanup_ctx` runs `apytheus.lifespan` for the app's lifetime (the Redis
backend's flusher). aiohttp runs on asyncio only, and so does this module.

Examples:
    >>> from aiohttp import web
    >>> from apytheus.aiohttp import apytheus_cleanup_ctx, metrics_handler, metrics_middleware
    >>> app = web.Application(middlewares=[metrics_middleware()])
    >>> route = app.router.add_get("/metrics", metrics_handler())
    >>> app.cleanup_ctx.append(apytheus_cleanup_ctx)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence

from aiohttp import hdrs, payload, web
from aiohttp.typedefs import Handler, Middleware

from ._expose.negotiate import negotiate
from ._expose.render import arender_format
from ._expose.routes import METHODS, UNMATCHED_ROUTE
from ._record.timers import clock
from ._request_metrics import RequestMetrics, metrics_for
from .backends._current import lifespan
from .exceptions import BackendUnavailable
from .metrics import DEFAULT_BUCKETS
from .registry import REGISTRY, Registry

__all__ = ["apytheus_cleanup_ctx", "metrics_handler", "metrics_middleware"]


def metrics_handler(
    registry: Registry = REGISTRY,
    protobuf: bool = True,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp request handler serving ``registry`` to Prometheus.

    The format is the best the ``Accept`` header allows (see
    `apytheus.exposition.render`), the body is gzipped when ``Accept-Encoding``
    allows gzip, and the answer is 503 when the backend's store (Redis) cannot be
    reached. Collecting does not block the event loop (see
    `apytheus.exposition.agenerate_metrics`).

    Args:
        registry: what to serve.
        protobuf: False never answers in protobuf.

    Returns:
        An ``async def handler(request) -> web.Response`` to route, e.g. with
        ``app.router.add_get("/metrics", metrics_handler())`` (GET and HEAD).

    Examples:
        >>> from aiohttp import web
        >>> from apytheus import CollectorRegistry
        >>> from apytheus.aiohttp import metrics_handler
        >>> app = web.Application()
        >>> route = app.router.add_get("/metrics", metrics_handler(CollectorRegistry()))
        >>> route.method, route.resource.canonical
        ('GET', '/metrics')
    """

    async def handler(request: web.Request) -> web.Response:
        fmt = negotiate(request.headers.get(hdrs.ACCEPT), protobuf)
        try:
            body = await arender_format(registry, fmt, None)
        except BackendUnavailable as exc:
            return web.Response(status=503, text=f"{exc}\n")
        response = web.Response(body=body, headers={hdrs.CONTENT_TYPE: fmt.content_type})
        if "gzip" in request.headers.get(hdrs.ACCEPT_ENCODING, "").lower():
            # gzip, not aiohttp's own pick (deflate first): the same answer as make_asgi_app
            response.enable_compression(web.ContentCoding.gzip)
        return response

    return handler


def metrics_middleware(
    registry: Registry | None = REGISTRY,
    buckets: Sequence[float] = DEFAULT_BUCKETS,
    excluded_paths: Iterable[str] = ("/metrics",),
    group_status_codes: bool = False,
    native_histograms: bool = False,
) -> Middleware:
    """An aiohttp middleware recording request metrics, labeled by route template.

    Records what `apytheus.middleware.MetricsMiddleware` records, under the same
    names: ``http_request_duration_seconds``, ``http_request_size_bytes`` and
    ``http_response_size_bytes`` (histograms by ``method``, ``route`` and
    ``status_code``) and ``http_requests_in_progress`` (a ``livesum`` gauge by
    ``method``). ``route`` is the canonical path of the matched resource
    (``/items/{item_id}``, with a sub-app's prefix); a request that matched no
    route (aiohttp's 404 and 405) gets ``<unmatched>``, and a method that is not
    a standard HTTP method gets ``OTHER``.

    A handler that raises `aiohttp.web.HTTPException` is recorded with its status,
    a timeout (`asyncio.TimeoutError`) with 504 and any other exception with 500,
    as aiohttp answers them; the exception goes on. Put the middleware first in
    ``middlewares`` so that it sees what the others answer.

    Limits (aiohttp hands the middleware a response before it sends it): the
    duration ends when the handler returns, so the body's transmission is only
    timed for responses the handler streams itself; the request size is its
    ``Content-Length`` (0 when chunked); the response size is the length of the
    (uncompressed) body, else its ``Content-Length``, else 0 (chunked streams,
    files).

    Args:
        registry: where the metrics go (``None``: nowhere). Middlewares on one
            registry share the metrics, with `MetricsMiddleware` too (the first
            one's ``buckets`` win).
        buckets: upper bounds of the duration histogram, in seconds.
        excluded_paths: regular expressions; a request whose path matches one
            fully is not recorded (default: ``/metrics``).
        group_status_codes: label ``2xx`` instead of ``200`` and so on.
        native_histograms: native buckets on the duration histogram too, as in
            `MetricsMiddleware` (with ``buckets=()``, only those).

    Returns:
        A new-style (``@web.middleware``) aiohttp middleware.

    Examples:
        >>> from aiohttp import web
        >>> from apytheus import CollectorRegistry
        >>> from apytheus.aiohttp import metrics_middleware
        >>> registry = CollectorRegistry()
        >>> app = web.Application(middlewares=[metrics_middleware(registry)])
        >>> sorted(m.name for m in registry.collect())  # doctest: +NORMALIZE_WHITESPACE
        ['http_request_duration_seconds', 'http_request_size_bytes',
         'http_requests_in_progress', 'http_response_size_bytes']
    """
    metrics = _request_metrics(registry, buckets, native_histograms)
    excluded = [re.compile(p) for p in excluded_paths]

    @web.middleware
    async def apytheus_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
        if any(p.fullmatch(request.path) for p in excluded):
            return await handler(request)
        method = request.method if request.method in METHODS else "OTHER"
        in_progress = metrics.in_progress.labels(method=method)
        status = 500  # unless the handler answers: aiohttp sends 500 for its exceptions
        response: web.StreamResponse | None = None
        in_progress.inc()
        start = clock()
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status, response = exc.status, exc
            raise
        except asyncio.TimeoutError:
            status = 504  # what aiohttp answers when a handler times out
            raise
        finally:
            duration = clock() - start
            in_progress.dec()
            code = f"{status // 100}xx" if group_status_codes else str(status)
            values = (method, _route(request), code)
            metrics.duration.labels(*values).observe(max(duration, 0.0))
            metrics.request_size.labels(*values).observe(request.content_length or 0)
            metrics.response_size.labels(*values).observe(_body_size(response))

    return apytheus_metrics


async def apytheus_cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run `apytheus.lifespan` for the app's lifetime, as an aiohttp cleanup context.

    Use it as ``app.cleanup_ctx.append(apytheus_cleanup_ctx)``. With the Redis
    backend the flusher runs from the app's startup, and cleanup flushes a last
    time; with the in-process backend it does nothing. The lifespan runs in a
    task of its own, so startup and cleanup may run in different tasks (as some
    test fixtures do).

    Args:
        app: the application (unused; aiohttp passes it).

    Examples:
        >>> from aiohttp import web
        >>> from apytheus.aiohttp import apytheus_cleanup_ctx
        >>> app = web.Application()
        >>> app.cleanup_ctx.append(apytheus_cleanup_ctx)
    """
    started = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def hold() -> None:
        async with lifespan(app):
            started.set_result(None)
            await stop.wait()

    task = asyncio.create_task(hold(), name="apytheus lifespan")
    try:
        await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    if task.done():
        task.result()  # the lifespan failed to start: raise its error into aiohttp's startup
    try:
        yield
    finally:
        stop.set()
        await task  # its last flush is shielded, even if cleanup is cancelled


def _request_metrics(
    registry: Registry | None, buckets: Sequence[float], native: bool = False
) -> RequestMetrics:
    """The request metrics of ``registry``, shared with `MetricsMiddleware` (one set each).

    So one registry can serve ASGI and aiohttp apps without a duplicate-metric error.
    """
    return metrics_for(registry, buckets, (), native)


def _route(request: web.Request) -> str:
    """The canonical path of the resource aiohttp's router matched, else unmatched."""
    match_info = request.match_info
    if match_info.http_exception is not None:  # 404 or 405 from the router
        return UNMATCHED_ROUTE
    resource = match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def _body_size(response: web.StreamResponse | None) -> int:
    """The response body's length as far as it is known before sending (else 0)."""
    if isinstance(response, web.Response):
        body = response.body
        if isinstance(body, (bytes, bytearray)):
            return len(body)
        if isinstance(body, payload.Payload) and body.size is not None:
            return body.size
    length = response.content_length if response is not None else None
    return length or 0
