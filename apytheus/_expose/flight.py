"""EXPOSE: concurrent scrapes of one worker share one collection (single flight).

A scrape that arrives while an identical one (same registry, format, escaping
and ``name[]`` filter) is being rendered on the same event loop waits for it and
gets its answer: two Prometheus servers, or a retry, cost one collection. Only
the HTTP apps use it: a direct `agenerate_metrics` call (a push, a test) always
collects afresh, since it may have recorded something just before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from anyio.lowlevel import RunVar

from ..exceptions import BackendUnavailable

Key = tuple[int, str, str, frozenset[str] | None]


class _Flight:
    """A scrape being rendered, which identical scrapes arriving meanwhile wait for."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.body: bytes | None = None
        self.unavailable: BackendUnavailable | None = None


_flights: RunVar[dict[Key, _Flight]] = RunVar("apytheus_flights")


def _in_flight() -> dict[Key, _Flight]:
    """The scrapes being rendered on this event loop (a loop's own: Events belong to it)."""
    try:
        return _flights.get()
    except LookupError:
        found: dict[Key, _Flight] = {}
        _flights.set(found)
        return found


async def shared(key: Key, render: Callable[[], Awaitable[bytes]]) -> bytes:
    """``render()``, or the answer of the identical render in flight.

    ``key`` names the scrape by its registry's id (a registry may be unhashable;
    it lives, in the first caller's frame, while in flight), format, escaping and filter.
    When the first caller cannot reach the store, the others get the same
    `BackendUnavailable` at once (not one timeout each); when it is cancelled
    (its client left, its deadline passed), each renders its own.
    """
    flights = _in_flight()
    flight = flights.get(key)
    if flight is not None:
        await flight.done.wait()
        if flight.body is not None:
            return flight.body
        if flight.unavailable is not None:
            raise BackendUnavailable(str(flight.unavailable))
    flight = flights[key] = _Flight()
    try:
        flight.body = await render()
        return flight.body
    except BackendUnavailable as exc:
        flight.unavailable = exc
        raise
    finally:
        if flights.get(key) is flight:
            del flights[key]
        flight.done.set()
