"""EXPOSE: what a request is labeled with: its method, and the template of the route it matched.

``route`` is always a template (``/items/{item_id}``), never the raw path, so a
scanner cannot multiply the series.
"""

from __future__ import annotations

from typing import Any

UNMATCHED_ROUTE = "<unmatched>"
"""The ``route`` of every request that matched no route (404s, scanners)."""

# Any other method a client sends is labeled OTHER: the label set stays bounded.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)


def route_template(scope: Any, root_path: str) -> str:
    """The template of the route the router matched (Starlette/FastAPI), else unmatched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    # A Mount adds its matched prefix to root_path before the inner router matches.
    mounted = scope.get("root_path", "")
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    return prefix + path
