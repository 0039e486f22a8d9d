"""Django integration: the route template of each request, for `MetricsMiddleware` (ASGI).

Django resolves a request's URL deep inside its handler, after every ASGI
middleware has handed the request on, and keeps the result on the request
(``request.resolver_match``). `RouteMiddleware` copies that route into the ASGI
scope, which Django keeps as ``request.scope``, where
`apytheus.middleware.MetricsMiddleware` reads it when the request ends.

Examples:
    >>> MIDDLEWARE = [
    ...     "apytheus.django.RouteMiddleware",  # first, so that it sees every request
    ...     "django.middleware.common.CommonMiddleware",
    ... ]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from ._expose.routes import ROUTE_KEY
from ._public import publish

__all__ = ["RouteMiddleware"]


class RouteMiddleware:
    """Django middleware: leaves the matched route in the ASGI scope for `MetricsMiddleware`.

    The template is ``"/" + request.resolver_match.route`` (``/items/<int:item_id>/``,
    includes joined, a ``re_path`` as its pattern). A request that matched no URL
    pattern is left alone, and `MetricsMiddleware` labels it ``<unmatched>``.
    It works in sync and async middleware chains, costs no thread switch under
    ASGI, and does nothing under WSGI (there is no scope).

    Put it first in ``MIDDLEWARE``: a middleware before it that answers by itself
    (a redirect, say) keeps it from seeing the request.

    Args:
        get_response: the rest of Django's middleware chain (Django passes it).

    Examples:
        >>> MIDDLEWARE = ["apytheus.django.RouteMiddleware"]  # in settings.py
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:  # Django then awaits __call__ (no thread, under ASGI)
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        """Hand the request on; once Django has resolved it, leave its route in the scope."""
        if self.is_async:
            return self._acall(request)
        try:
            return self.get_response(request)
        finally:
            _leave_route(request)

    async def _acall(self, request: Any) -> Any:
        """`__call__` in an async chain."""
        response: Awaitable[Any] = self.get_response(request)
        try:
            return await response
        finally:
            _leave_route(request)


def _leave_route(request: Any) -> None:
    """Copy ``request.resolver_match.route`` into ``request.scope``, if both exist."""
    match = getattr(request, "resolver_match", None)
    scope = getattr(request, "scope", None)  # ASGIRequest only; WSGI has none
    route = getattr(match, "route", None)
    if isinstance(scope, dict) and isinstance(route, str):
        scope[ROUTE_KEY] = "/" + route


publish(globals())
