"""The backend this process records into, and the metrics that must follow a switch."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Protocol

from ._inprocess import InProcessBackend
from ._protocol import Backend

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
            adopt = getattr(backend, "adopt", None)
            close = getattr(previous, "close", None)
            if callable(adopt):
                adopt(previous)
            elif callable(close):
                close()
        moved = sum(f.reattach(backend) for f in list(_followers))
    if moved and previous is not backend:
        log.warning(
            "apytheus: backend switched to %r after %d series were created; "
            "their values so far stay with the series, select the backend before traffic",
            backend,
            moved,
        )
