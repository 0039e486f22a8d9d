"""EXPOSE: the full template of a Starlette/FastAPI route, ``Mount`` prefixes included.

Starlette's router overwrites ``scope["route"]`` at each level and adds the *raw*
matched prefix of each ``Mount`` to ``scope["root_path"]``, so by the time the
response starts the outer templates are gone. `chain_template` finds them again by
walking the route tree from the top router down to the route that answered, matching
only the ``Mount`` and ``Host`` routes on the way (with their own ``matches``, as the
router did). It runs only for requests that went through a ``Mount``.

Imported only once ``starlette.routing`` is (a scope with a Starlette route proves it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from starlette.routing import BaseRoute, Host, Match, Mount, Route, Router, WebSocketRoute

# Deeper than any real app nests its mounts; a cycle in a route tree cannot hang us.
_MAX_DEPTH = 32
_PLAIN = (Route, Mount, Host, WebSocketRoute)


def is_mount(route: object) -> bool:
    """Whether ``route`` is a Starlette ``Mount``."""
    return isinstance(route, Mount)


def leaf_template(scope: Any, route: Any) -> str | None:
    """The template of the route that answered, relative to its innermost ``Mount``.

    None: no route answered (a ``Mount`` whose own routes matched nothing, a 404).
    A ``Mount`` of an app without routes (an opaque ASGI app) answers itself: "".
    """
    if isinstance(route, Mount):
        return None if route.routes else ""
    # FastAPI (>= 0.137) leaves the route of an included APIRouter as declared; the
    # context it matched knows the path with every include_router prefix.
    fastapi = scope.get("fastapi")
    if fastapi:
        context = fastapi.get("effective_route_context")
        if getattr(context, "original_route", None) is route:
            path = getattr(context, "path", None)
            if isinstance(path, str):
                return path
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def find_routes(app: object) -> Sequence[Any] | None:
    """The routes of the first Starlette router under ``app``, through middlewares' ``.app``."""
    for _ in range(_MAX_DEPTH):
        if isinstance(app, Router):
            return app.routes
        router = getattr(app, "router", None)
        if isinstance(router, Router):  # a Starlette or FastAPI app
            return router.routes
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def chain_template(
    routes: Sequence[Any], scope: Any, path: str, root_path: str, route: Any
) -> str | None:
    """The ``Mount`` templates from ``routes`` down to ``route``, joined (``/org/{org}``).

    ``path`` and ``root_path`` are the request's as the top router saw them. A
    ``Mount`` that answered itself (``route``) is part of the chain. None: ``route``
    could not be reached (a route tree changed under the request, say); the caller
    then labels the request unmatched rather than guess.
    """
    walk: dict[str, Any] = {
        "type": "http",
        "path": path,
        "root_path": root_path,
        "headers": scope.get("headers", ()),
        "method": scope.get("method", "GET"),
    }
    template = ""
    for _ in range(_MAX_DEPTH):
        chosen: Mount | Host | None = None
        for candidate in _candidates(routes):
            if candidate is route:
                return template + route.path if isinstance(route, Mount) else template
            if isinstance(candidate, (Mount, Host)):
                match, child = candidate.matches(walk)
                if match is Match.FULL:
                    chosen = candidate
                    walk.update(child)
                    break
        if chosen is None:
            # FastAPI's routes stand in included routers, not in the list: the prefix
            # is complete once the walk has consumed as much as the router did.
            return template if walk["root_path"] == scope.get("root_path", "") else None
        if isinstance(chosen, Mount):
            template += chosen.path
        routes = chosen.routes
    return None


def _candidates(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    """The routes a router tries, with the Mounts and Hosts of FastAPI's included routers."""
    for route in routes:
        if isinstance(route, _PLAIN):  # most routes: skip the (slow, missing) getattr below
            yield route
            continue
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            yield route
            continue
        # FastAPI (>= 0.137): an included APIRouter. Its Mounts and Hosts are copies that
        # carry the include prefixes; its other routes are left out, because one router
        # included twice holds the same route objects under two prefixes.
        for context in contexts():
            starlette_route = getattr(context, "starlette_route", None)
            if isinstance(starlette_route, (Mount, Host)):
                yield starlette_route
