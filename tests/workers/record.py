"""A worker process: records into the Redis backend selected by the environment.

python record.py counters <asyncio|trio> <n_inc> <n_observe>
python record.py gauge <mode> <value> <linger_seconds | "stdin">
python record.py native <asyncio|trio> <file of values, JSON>
"""

from __future__ import annotations

import json
import sys
import time

import anyio
import anyio.lowlevel

import apytheus
from apytheus import Counter, Gauge, Histogram

REQUESTS = Counter("requests", "Requests", ["route"])
LATENCY = Histogram("latency_seconds", "Latency", ["route"])
WAIT = Histogram("wait_seconds", "Wait", ["route"], buckets=(1.0,), native_bucket_factor=1.1)


async def native(values: list[float]) -> None:
    async with apytheus.lifespan():
        for i, value in enumerate(values):
            WAIT.labels(route="/w").observe(value)
            if i % 300 == 0:
                await anyio.sleep(0.05)  # several flushes (every 0.1 s) during the run


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
    elif kind == "native":
        with open(sys.argv[3], encoding="utf-8") as f:
            anyio.run(native, json.load(f), backend=sys.argv[2])
    elif kind == "gauge":
        gauge = Gauge("level", "Level", multiprocess_mode=sys.argv[2])
        gauge.set(float(sys.argv[3]))
        print("ready", flush=True)
        if sys.argv[4] == "stdin":
            sys.stdin.readline()  # until the test says so; the fallback thread flushes meanwhile
        else:
            time.sleep(float(sys.argv[4]))  # the fallback thread flushes meanwhile
        # atexit: the last flush, then this worker removes what only it needed
    else:
        raise SystemExit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
