"""Lifespan: run the backend's background work (the flusher) around an app."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from .backends._current import current


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
    return current().lifespan()
