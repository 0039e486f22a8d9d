"""STORE: the backend this process records into, a switch to another, and its lifespan."""

from __future__ import annotations

import logging
import threading
import weakref
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from ._inprocess import InProcessBackend
from ._protocol import Backend, SupportsAdopt, SupportsClose

log = logging.getLogger("apytheus")


class Follower(Protocol):
    """Something holding series that must be re-attached when the backend changes."""

    def reattach(self, backend: Backend) -> int:
        """Attach every series to ``backend``; return how many there were."""
        ...


_lock = threading.Lock()
_backend: Backend = InProcessBackend()
_followers: weakref.WeakSet[Follower] = weakref.WeakSet()


def current() -> Backend:
    """The backend in use."""
    return _backend


def follow(follower: Follower) -> Backend:
    """Register ``follower`` for backend switches and return the current backend."""
    with _lock:
        _followers.add(follower)
        return _backend


def switch(backend: Backend) -> None:
    """Make ``backend`` the current one and move every existing series onto it.

    The previous backend is handed to the new one's optional ``adopt(previous)``
    (which continues it, or closes it), else closed with its optional ``close()``.
    """
    global _backend
    with _lock:
        previous, _backend = _backend, backend
        if previous is not backend:
            if isinstance(backend, SupportsAdopt):
                backend.adopt(previous)
            elif isinstance(previous, SupportsClose):
                previous.close()
        moved = sum(f.reattach(backend) for f in list(_followers))
    if moved and previous is not backend:
        log.warning(
            "apytheus: backend switched to %r after %d series were created; "
            "their values so far stay with the series, select the backend before traffic",
            backend,
            moved,
        )


def lifespan(app: Any = None) -> AbstractAsyncContextManager[None]:
    """Run the backend's flusher for the duration of the context.

    Pass it as ``FastAPI(lifespan=apytheus.lifespan)`` or
    ``Starlette(lifespan=apytheus.lifespan)``, or use
    ``async with apytheus.lifespan():`` anywhere (a script, a trio nursery,
    an aiohttp cleanup context). On exit the backend flushes a last time. With
    the in-process backend there is nothing to run.

    Args:
        app: ignored; accepted so the function fits the ``lifespan=`` hook.
    """
    return _backend.lifespan()


lifespan.__module__ = "apytheus"
