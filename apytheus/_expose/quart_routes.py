"""EXPOSE: Quart's matched URL rule, left in the ASGI scope for `MetricsMiddleware`.

Quart matches a request in its request context (``request.url_rule``, a werkzeug
``Rule``) and keeps the scope it was given as ``request.scope``. Its
``request_started`` signal is sent after the match, in the task that handles the
request, so a receiver there can copy the rule's template into that scope.
Imported only when ``quart`` already is.
"""

from __future__ import annotations

from quart import request
from quart.signals import request_started

from .routes import ROUTE_KEY


async def _leave_rule(sender: object, **extra: object) -> None:
    """Copy the matched rule (``/items/<int:item_id>``) into the request's scope."""
    rule = request.url_rule
    if rule is not None:  # None: nothing matched (404, 405), the route stays unmatched
        request.scope[ROUTE_KEY] = rule.rule  # type: ignore[literal-required]


def leave_rules_in_scope() -> None:
    """Connect the receiver to every Quart app's ``request_started`` (once; idempotent)."""
    # async, so Quart awaits it in the request's task (a sync one would go to a thread)
    request_started.connect(_leave_rule, weak=False)
