"""A worker process: records into the Redis backend selected by the environment.

python record.py counters <asyncio|trio> <n_inc> <n_observe>
python record.py gauge <mode> <value> <linger_seconds>
"""

from __future__ import annotations

import sys
import time

import anyio
import anyio.lowlevel

import apytheus
from apytheus import Counter, Gauge, Histogram

REQUESTS = Counter("requests", "Requests", ["route"])
LATENCY = Histogram("latency_seconds", "Latency", ["route"])


async def counters(n_inc: int, n_observe: int) -> None:
    async with apytheus.lifespan():
        for i in range(n_inc):
            REQUESTS.labels(route=f"/r{i % 10}").inc()
            if i < n_observe:
                LATENCY.labels(route="/r").observe((i % 100) / 100)
            if i % 500 == 0:
                await anyio.lowlevel.checkpoint()  # let the flusher task run meanwhile


def main() -> None:
    kind = sys.argv[1]
    if kind == "counters":
        anyio.run(counters, int(sys.argv[3]), int(sys.argv[4]), backend=sys.argv[2])
    elif kind == "gauge":
        gauge = Gauge("level", "Level", multiprocess_mode=sys.argv[2])
        gauge.set(float(sys.argv[3]))
        print("ready", flush=True)
        time.sleep(float(sys.argv[4]))  # the fallback thread flushes meanwhile; atexit at the end
    else:
        raise SystemExit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
