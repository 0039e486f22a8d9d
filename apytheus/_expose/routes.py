"""EXPOSE: what a request is labeled with: its method, and the template of the route it matched.

``route`` is always a template (``/items/{item_id}``), never the raw path, so a
scanner cannot multiply the series. Each framework leaves its match in the ASGI
scope: Starlette and FastAPI as ``scope["route"]``, Litestar as
``scope["path_template"]``; Quart and Django through a hook that writes
`ROUTE_KEY` (`hook_frameworks`, `apytheus.django.RouteMiddleware`).
"""

from __future__ import annotations

import sys
from typing import Any

UNMATCHED_ROUTE = "<unmatched>"
"""The ``route`` of every request that matched no route (404s, scanners)."""

ROUTE_KEY = "apytheus.route"
"""The scope key where a framework's hook leaves the template it matched (Quart, Django)."""

# Any other method a client sends is labeled OTHER: the label set stays bounded.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)


def route_template(scope: Any, root_path: str) -> str:
    """The template of the route the app's router matched, else `UNMATCHED_ROUTE`."""
    template = scope.get(ROUTE_KEY)  # Quart's and Django's hooks
    if not isinstance(template, str):
        template = scope.get("path_template")  # Litestar's router
        if isinstance(template, str):
            template = template or _litestar_mount(scope)
        else:  # Starlette's and FastAPI's routers
            template = getattr(scope.get("route"), "path", None)
            if not isinstance(template, str):
                return UNMATCHED_ROUTE
    # A Starlette Mount adds its matched prefix to root_path before the inner app routes.
    mounted = scope.get("root_path", "")
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    return prefix + template


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
