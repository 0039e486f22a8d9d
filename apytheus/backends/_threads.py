"""Worker threads for the backends' blocking I/O, apart from the app's own.

anyio's default thread limiter (40 threads per event loop) is also what
Starlette and FastAPI run sync endpoints on: an app whose sync endpoints hold
every thread would hold up the flusher and the scrapes too. The backends'
I/O gets a small limiter of its own per event loop instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

T = TypeVar("T")

TOKENS = 4  # a flush at a time (it holds a lock), and a few scrapes at once
_limiter: RunVar[anyio.CapacityLimiter] = RunVar("apytheus_io_limiter")


async def run_sync(fn: Callable[..., T], *args: object, abandon: bool = False) -> T:
    """``fn(*args)`` in a worker thread of the backends' own limiter.

    ``abandon=True``: a cancelled caller returns at once and the thread finishes
    on its own, its result dropped (for reads, which change nothing).
    """
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(TOKENS)
        _limiter.set(limiter)
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter, abandon_on_cancel=abandon)
