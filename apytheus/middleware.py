"""MetricsMiddleware: request metrics for any ASGI app, labeled by route template.

Records ``http_request_duration_seconds``, ``http_request_size_bytes`` and
``http_response_size_bytes`` (histograms with labels ``method``, ``route``,
``status_code``) and ``http_requests_in_progress`` (a ``livesum`` gauge by
``method``). ``route`` is the route template (``/items/{item_id}``), never the
raw path, so a scanner cannot multiply the series.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from ._expose.asgi import ASGIApp, Message, Receive, Scope, Send, run_lifespan
from ._expose.routes import METHODS as METHODS
from ._expose.routes import UNMATCHED_ROUTE as UNMATCHED_ROUTE
from ._expose.routes import RouteTemplates, hook_frameworks
from ._public import publish
from ._record.timers import clock
from ._request_metrics import metrics_for
from ._trace import require_otel, span_exemplar
from .registry import REGISTRY, Registry

__all__ = ["MetricsMiddleware", "PytheusMiddlewareASGI", "UNMATCHED_ROUTE"]


_REGEX_CHARS = frozenset(".^$*+?{}[]\\|()")

log = logging.getLogger("apytheus")


class MetricsMiddleware:
    """Pure ASGI middleware recording request metrics, labeled by route template.

    ``route`` is the template the app's router matched: Starlette's and
    FastAPI's (under any ``Mount``), Litestar's, Quart's URL rule, and Django's
    route (with `apytheus.django.RouteMiddleware` in its ``MIDDLEWARE``);
    requests that match no route get ``route="<unmatched>"``. Streaming
    responses are timed to their last byte; a request whose app raises is
    recorded with status 500 and the error re-raised. Wrapping the top-level
    app also runs `apytheus.lifespan`, so the Redis backend's flusher needs
    nothing more.

    Args:
        app: the ASGI app to wrap.
        registry: where the metrics go (``None``: nowhere); middlewares on the
            same registry share the metrics (the first one's options win).
        buckets: upper bounds of the duration histogram, in seconds.
        excluded_paths: regular expressions; a request whose path matches one
            fully is not recorded (None: ``/metrics``; nothing for
            `PytheusMiddlewareASGI`).
        group_status_codes: label ``2xx`` instead of ``200`` and so on.
        extra_labels: a function of the ASGI scope returning more label values;
            its keys must be given as ``extra_label_names``.
        extra_label_names: the names of those labels.
        exemplar: a function of the ASGI scope returning exemplar labels (e.g.
            ``{"trace_id": ...}``) or None; attached to the duration
            observation and shown in OpenMetrics and protobuf. ``"otel"``: the
            ``trace_id`` and ``span_id`` of the current OpenTelemetry span, if
            sampled (needs ``opentelemetry-api``; put the tracing middleware
            outside this one, so that its span is current here).
        exemplars: ``"otel"`` is the same as ``exemplar="otel"``, named as the
            metrics' own ``exemplars="otel"`` (give one of the two).
        native_histograms: the duration histogram also has native buckets
            (factor 1.1), which Prometheus reads through protobuf; with
            ``buckets=()`` it has only those.

    Examples:
        >>> from starlette.applications import Starlette
        >>> from apytheus import CollectorRegistry
        >>> from apytheus.middleware import MetricsMiddleware
        >>> app = Starlette()
        >>> app.add_middleware(MetricsMiddleware, registry=CollectorRegistry())
    """

    # a request without a body observes 0 bytes (pytheus' middleware observes nothing)
    _observe_empty_requests = True
    _excluded_by_default: tuple[str, ...] = ("/metrics",)

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        registry: Registry | None = REGISTRY,
        buckets: Sequence[float] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        excluded_paths: Iterable[str] | None = None,
        group_status_codes: bool = False,
        extra_labels: Callable[[Scope], Mapping[str, str]] | None = None,
        extra_label_names: Sequence[str] = (),
        exemplar: Callable[[Scope], Mapping[str, str] | None] | str | None = None,
        native_histograms: bool = False,
        exemplars: str | None = None,
    ) -> None:
        # typed loosely: Litestar's and Quart's apps declare TypedDict scopes, which
        # Callable[[MutableMapping, ...], ...] would refuse under mypy strict
        self.app: ASGIApp = app
        self._route_template = RouteTemplates(app)
        hook_frameworks()
        if bool(extra_labels) != bool(extra_label_names):
            raise ValueError("give extra_labels and extra_label_names together")
        extra = tuple(extra_label_names)
        self.metrics = metrics_for(registry, buckets, extra, bool(native_histograms))
        # plain paths are a set lookup; only real patterns cost a regex match
        excluded = list(self._excluded_by_default if excluded_paths is None else excluded_paths)
        self.excluded_paths = frozenset(p for p in excluded if not set(p) & _REGEX_CHARS)
        self.excluded = [re.compile(p) for p in excluded if set(p) & _REGEX_CHARS]
        self.group_status_codes = group_status_codes
        self.extra_labels = extra_labels
        if exemplars is not None:
            if exemplars != "otel" or exemplar is not None:
                raise ValueError(
                    f"exemplars takes 'otel' (and no exemplar= besides), not {exemplars!r}"
                )
            exemplar = exemplars
        if exemplar == "otel":  # the current OpenTelemetry span's ids
            require_otel()
            exemplar = span_exemplar
        elif isinstance(exemplar, str):
            raise ValueError(f"exemplar must be a function or 'otel', not {exemplar!r}")
        self.exemplar = exemplar
        self._exemplar_failed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await run_lifespan(self.app, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in self.excluded_paths or (
            self.excluded and any(p.fullmatch(path) for p in self.excluded)
        ):
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        method = scope.get("method", "GET")
        if method not in METHODS:
            method = "OTHER"
        root_path = scope.get("root_path", "")
        # what routers above this middleware left, to tell it from what the app's own do
        entry_route = scope.get("route")
        had_router = "router" in scope
        status = 500
        received = 0
        sent = 0
        end: float | None = None

        async def counting_receive() -> Message:
            nonlocal received, status
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            elif message["type"] == "http.disconnect" and status == 500 and end is None:
                status = 499  # the client left before an answer (nginx's code), not a 500
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status, sent, end
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    end = clock()
            elif message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        in_progress = metrics.in_progress_by_method.get(method) or metrics.in_progress_for(method)
        in_progress.inc()
        start = clock()
        try:
            await self.app(scope, counting_receive, recording_send)
        finally:
            in_progress.inc(-1.0)  # dec() checks its argument again: not needed here
            duration = (end if end is not None else clock()) - start
            route = self._route_template(scope, root_path, path, entry_route, had_router)
            if self.extra_labels is None:
                key: tuple[Any, ...] = (method, route, status)
            else:
                extra = self.extra_labels(scope)
                key = (method, route, status, *(str(extra.get(n, "")) for n in metrics.extra))
            children = metrics.children.get(key)
            if children is None:
                code = f"{status // 100}xx" if self.group_status_codes else str(status)
                children = metrics.children_for(key, [method, route, code, *key[3:]])
            duration = duration if duration > 0 else 0.0
            if self.exemplar is None:
                children[0].observe(duration)
            else:
                self._observe_with_exemplar(children[0], duration, scope)
            if received or self._observe_empty_requests:
                children[1].observe(received)
            children[2].observe(sent)

    def _observe_with_exemplar(self, child: Any, duration: float, scope: Scope) -> None:
        """Observe with the user's exemplar; a failing callback never fails the request."""
        try:
            labels = self.exemplar(scope) if self.exemplar is not None else None
            child.observe(duration, exemplar=labels or None)
        except Exception:
            if not self._exemplar_failed:
                self._exemplar_failed = True
                log.exception("apytheus: the middleware's exemplar function failed")
            child.observe(duration)


class PytheusMiddlewareASGI(MetricsMiddleware):
    """pytheus' middleware: `MetricsMiddleware` recording every request, ``/metrics`` too.

    pytheus' middleware takes only the app and excludes nothing, so its users
    see their scrapes counted; like it, it observes a request's size only when
    the request has a body. The metric names and labels are pytheus' ones;
    what still differs is listed in docs/migrating/pytheus.md. Every option of
    `MetricsMiddleware` is accepted.

    Examples:
        >>> from starlette.applications import Starlette
        >>> from apytheus import CollectorRegistry
        >>> from apytheus.middleware import PytheusMiddlewareASGI
        >>> app = Starlette()
        >>> app.add_middleware(PytheusMiddlewareASGI, registry=CollectorRegistry())
    """

    _observe_empty_requests = False

    _excluded_by_default = ()


publish(globals())
