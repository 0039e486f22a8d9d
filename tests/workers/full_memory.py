"""A worker process for tests/test_redis_full_memory.py: records a seeded plan into the
Redis backend selected by the environment, while the test keeps Redis' memory full.

python full_memory.py <seed> <worker index> <events> <seconds>

It prints ``ready <apytheus path>``, records the plan's events spread over about
``seconds`` (its flusher flushes meanwhile), prints ``recorded``, waits for a line on
stdin, leaves ``apytheus.lifespan()`` (the last flush) and prints its backend's health
as JSON. `plan` is what the test checks Redis' totals against.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from typing import NamedTuple

ROUTES = [f"/route/{i}" for i in range(16)]
METHODS = ["GET", "POST", "PUT", "DELETE"]
SIZE_BUCKETS = (100.0, 1_000.0, 10_000.0)


class Event(NamedTuple):
    """One request as the worker records it (every amount is exact in a double)."""

    route: str
    method: str
    size: int  # bytes: added to a counter, observed by a histogram
    latency: float  # a multiple of 1/64 s, observed by the other histogram


def plan(seed: int, worker: int, events: int) -> Iterator[Event]:
    """The events a worker records: the same for a seed, worker and count, in any process."""
    rng = random.Random(f"{seed}/{worker}")
    for _ in range(events):
        yield Event(
            rng.choice(ROUTES),
            rng.choice(METHODS),
            rng.randrange(1, 20_000),
            rng.randrange(256) / 64,
        )


def main() -> None:
    import anyio
    import anyio.to_thread

    import apytheus
    from apytheus import Counter, Histogram
    from apytheus.backends import get_backend
    from apytheus.backends.redis import RedisBackend

    seed, worker, events, seconds = (*map(int, sys.argv[1:4]), float(sys.argv[4]))
    requests = Counter("requests", "Requests", ["route", "method"])
    sent = Counter("sent_bytes", "Bytes sent", ["route"])
    latency = Histogram("latency_seconds", "Latency", ["route"])
    sizes = Histogram("size_bytes", "Response sizes", ["method"], buckets=SIZE_BUCKETS)

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    async def run() -> None:
        async with apytheus.lifespan():
            say(f"ready {apytheus.__file__}")
            chunks = 50
            todo = list(plan(seed, worker, events))
            for i in range(chunks):
                for e in todo[i * len(todo) // chunks : (i + 1) * len(todo) // chunks]:
                    requests.labels(route=e.route, method=e.method).inc()
                    sent.labels(route=e.route).inc(e.size)
                    latency.labels(route=e.route).observe(e.latency)
                    sizes.labels(method=e.method).observe(e.size)
                await anyio.sleep(seconds / chunks)  # the flusher flushes meanwhile
            say("recorded")
            await anyio.to_thread.run_sync(sys.stdin.readline)
        backend = get_backend()
        assert isinstance(backend, RedisBackend)
        health = {
            "flush_errors": backend.flush_errors,
            "dropped_updates": backend.dropped_updates,
            "pending": backend._buffer.pending is not None,
        }
        say(json.dumps(health))

    anyio.run(run)


if __name__ == "__main__":
    main()
