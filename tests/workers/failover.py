"""A worker process for tests/test_redis_failover.py: records without pause until told to stop.

python failover.py <seed> <worker index>

The backend comes from the environment (APYTHEUS_BACKEND_CLASS / _CONFIG). It prints
``ready``, then records about 2,000 increments and observations a second (the flusher
flushes meanwhile, through whatever the test does to Redis), until a line arrives on
stdin. Then it leaves ``apytheus.lifespan()`` (the last flush) and prints, as JSON, what
it recorded per series and its backend's health.
"""

from __future__ import annotations

import json
import random
import sys


def main() -> None:
    import anyio
    import anyio.to_thread

    import apytheus
    from apytheus import Counter, Histogram
    from apytheus.backends import get_backend
    from apytheus.backends.redis import RedisBackend

    seed, index = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(f"{seed}/{index}")
    jobs = Counter("jobs", "Jobs", ["kind"])
    latency = Histogram("latency_seconds", "Latency", ["kind"], buckets=(0.5, 1.0, 2.0))
    recorded: dict[str, int] = {}
    observed: dict[str, float] = {}

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    async def record(stop: anyio.Event) -> None:
        while not stop.is_set():
            for _ in range(20):
                kind = f"k{rng.randrange(5)}"
                jobs.labels(kind=kind).inc()
                value = rng.randrange(256) / 64  # exact in a double: sums add up exactly
                latency.labels(kind=kind).observe(value)
                recorded[kind] = recorded.get(kind, 0) + 1
                observed[kind] = observed.get(kind, 0.0) + value
            await anyio.sleep(0.01)

    async def run() -> None:
        async with apytheus.lifespan():
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(record, stop)
                say("ready")
                await anyio.to_thread.run_sync(sys.stdin.readline)
                stop.set()
        backend = get_backend()
        assert isinstance(backend, RedisBackend)
        say(
            json.dumps(
                {
                    "recorded": recorded,
                    "observed": observed,
                    "flush_errors": backend.flush_errors,
                    "pending": backend._buffer.pending is not None,
                    "dirty": backend._buffer.dirty(),
                }
            )
        )

    anyio.run(run)


if __name__ == "__main__":
    main()
