"""A worker process: records into the Redis backend selected by the environment.

python record.py counters <asyncio|trio> <n_inc> <n_observe>
python record.py gauge <mode> <value> <linger_seconds | "stdin">
python record.py native <asyncio|trio> <file of values, JSON>
python record.py exemplars <asyncio|trio> <worker name> <good|bad>
"""

from __future__ import annotations

import base64
import json
import math
import sys
import time

import anyio
import anyio.lowlevel

import apytheus
from apytheus import Counter, Gauge, Histogram
from apytheus._labels import LabelSet
from apytheus._samples import Exemplar
from apytheus.backends import get_backend
from apytheus.exposition import OPENMETRICS_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, arender

REQUESTS = Counter("requests", "Requests", ["route"])
LATENCY = Histogram("latency_seconds", "Latency", ["route"])
WAIT = Histogram("wait_seconds", "Wait", ["route"], buckets=(1.0,), native_bucket_factor=1.1)
JOBS = Counter("jobs", "Jobs", ["queue"])
JOB_TIME = Histogram("job_seconds", "Job time", buckets=(1.0,), native_bucket_factor=1.1)


async def exemplars(name: str, bad: bool) -> None:
    """Record with this worker's exemplars, flush, say so; on a line from stdin, print
    this worker's scrape (OpenMetrics, and protobuf in base64) as one JSON line."""
    async with apytheus.lifespan():
        for _ in range(100):
            JOBS.labels(queue="q").inc()
            JOB_TIME.observe(0.5)
            JOB_TIME.observe(2.0)
        JOBS.labels(queue="q").inc(exemplar={"worker": name})
        JOB_TIME.observe(0.5, {"worker": name})
        JOB_TIME.observe(2.0, {"worker": name})
        if bad:  # what no check lets through: too long to travel, no finite time, newest
            huge = Exemplar(LabelSet(("worker",), ("x" * 100_000,)), 1.0, time.time() + 3600)
            JOBS.labels(queue="q")._series.exemplar = huge
            JOB_TIME._series.exemplars[0] = huge
            JOB_TIME._series.exemplars[1] = Exemplar(LabelSet(("worker",), ("nan",)), 1.0, math.nan)
        await get_backend().flush()
        print("recorded", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        text, _ = await arender(accept=OPENMETRICS_CONTENT_TYPE)
        proto, _ = await arender(accept=PROTOBUF_CONTENT_TYPE.replace(" ", ""))
        found = {"om": text.decode(), "pb": base64.b64encode(proto).decode()}
        print(json.dumps(found), flush=True)


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
    elif kind == "exemplars":
        anyio.run(exemplars, sys.argv[3], sys.argv[4] == "bad", backend=sys.argv[2])
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
