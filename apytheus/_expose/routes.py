"""EXPOSE: what a request is labeled with: its method, and the template of the route it matched.

``route`` is always a template (``/items/{item_id}``), never the raw path, so a
scanner cannot multiply the series. Each framework leaves its match in the ASGI
scope: Starlette and FastAPI as ``scope["route"]``, Litestar as
``scope["path_template"]``; Quart and Django through a hook that writes
`ROUTE_KEY` (`hook_frameworks`, `apytheus.django.RouteMiddleware`). Under a
Starlette ``Mount`` (whatever framework answers inside it) the scope keeps only the
raw matched prefix; `starlette_routes` finds the ``Mount`` templates instead.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

UNMATCHED_ROUTE = "<unmatched>"
"""The ``route`` of every request that matched no route (404s, scanners)."""

ROUTE_KEY = "apytheus.route"
"""The scope key where a framework's hook leaves the template it matched (Quart, Django)."""

# Any other method a client sends is labeled OTHER: the label set stays bounded.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)

_UNSET: Any = object()
_starlette_routes: ModuleType | None = None


def _starlette() -> ModuleType:
    """`starlette_routes`, imported on first use (a Starlette route in a scope: it can be)."""
    global _starlette_routes
    if _starlette_routes is None:
        from . import starlette_routes

        _starlette_routes = starlette_routes
    return _starlette_routes


class RouteTemplates:
    """The route template of each request through one middleware (it caches the app's router)."""

    def __init__(self, app: object) -> None:
        self.app = app
        self._routes: Any = _UNSET  # the top Starlette router's routes, found on first need

    def __call__(
        self, scope: Any, root_path: str, path: str, entry_route: object, had_router: bool
    ) -> str:
        """The template of the route the app's routers matched, else `UNMATCHED_ROUTE`.

        ``root_path``, ``path``, ``entry_route`` (``scope["route"]``) and
        ``had_router`` (``"router" in scope``) are the scope's as the middleware got it.
        """
        route = scope.get("route")
        if route is entry_route:  # set by a router above the middleware, not this app's
            route = None
        template = _own_template(scope, route)
        if template is None:
            return UNMATCHED_ROUTE
        if route is None or template == UNMATCHED_ROUTE:
            return template  # no Starlette Mount above: nothing to prefix
        starlette = _starlette()
        if scope.get("root_path", "") == root_path and not starlette.is_mount(route):
            return template  # no Mount took part of the path: the template is whole
        # A Mount took a prefix, whose raw value is all the scope keeps: find its template.
        chain = starlette.chain_template(
            self._top_routes(scope, had_router), scope, path, root_path, route
        )
        return UNMATCHED_ROUTE if chain is None else (chain + template or "/")

    def _top_routes(self, scope: Any, had_router: bool) -> Any:
        """The routes of the router under the middleware (found once), or of the scope's."""
        if self._routes is _UNSET:
            self._routes = _starlette().find_routes(self.app)
        if self._routes is not None:
            return self._routes
        # a middleware without .app in between: the first router under us left itself
        return () if had_router else getattr(scope.get("router"), "routes", ())


def _own_template(scope: Any, route: object) -> str | None:
    """The template the answering framework matched, relative to any Starlette Mount."""
    template = scope.get(ROUTE_KEY)  # Quart's and Django's hooks
    if isinstance(template, str):
        return template
    template = scope.get("path_template")  # Litestar's router
    if isinstance(template, str):
        return template or _litestar_mount(scope)
    if route is None:
        return None
    leaf: str | None = _starlette().leaf_template(scope, route)  # Starlette's, FastAPI's
    return leaf


def _litestar_mount(scope: Any) -> str:
    """The path of the Litestar ASGI mount (``is_mount=True``) that took the request."""
    # Litestar leaves path_template empty for mounts (static files, say): the handler's
    # own path is the template, and the raw path, which Litestar keeps, says which one.
    paths = sorted(getattr(scope.get("route_handler"), "paths", ()), key=len, reverse=True)
    if len(paths) == 1:
        return str(paths[0])
    raw = scope.get("raw_path", b"").decode("latin-1")[len(scope.get("root_path", "")) :]
    return next((p for p in paths if raw.startswith(p)), UNMATCHED_ROUTE)


def hook_frameworks() -> None:
    """Have the imported frameworks that need a hook leave their template at `ROUTE_KEY`."""
    if "quart" in sys.modules:  # Quart keeps its URL rule on the request, not in the scope
        from .quart_routes import leave_rules_in_scope

        leave_rules_in_scope()
