#!/usr/bin/env python
"""Scale benchmark: how apytheus' costs grow with the series per worker, next to prometheus_client.

One labeled counter (``Counter("requests", ..., ["route"])``) with 1,000, 10,000
and 100,000 label values (``--quick``: 1,000 and 10,000), measured five ways:

1. **Memory per series** (bytes, ``tracemalloc``): what creating the series and
   recording once into each allocates and keeps, minus a baseline taken just
   before (``gc.collect()`` before both readings), divided by the series. The
   metric objects, the label value strings (the application's own) and a warm-up
   metric with 100 series exist before the baseline, so one-off costs (lazy
   imports, the first Redis connection) stay out. Variants: apytheus in-process;
   apytheus with the Redis backend tracking the series (selected with
   ``load_backend(RedisBackend, {..., "flush_interval": 3600})`` *before* the
   metrics are created, and one ``flush_sync()`` after the recording, so its
   buffer holds what it sent); prometheus_client (``disable_created_metrics()``).
2. **Redis flush after 10 series changed** (ms): all series held and flushed
   once (untimed); then, repeatedly, 10 random series get ``inc()`` and one
   ``backend.flush_sync()`` is timed.
3. **Redis flush when nothing changed** (ms): ``flush_sync()`` right after
   another, timed the same way. Rows 2 and 3 alternate within one process.
4. **Scrape** (ms): ``generate_metrics(registry)`` with apytheus on Redis (the
   scraping worker holds every series and flushed them before; the call flushes
   its own, unchanged, buffer and reads Redis), with apytheus in-process, and
   prometheus_client's ``generate_latest(registry)``, in-process and in
   multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` in a temporary directory,
   one writer process' files, read through a ``MultiProcessCollector``).
5. **Render formats** (ms): ``apytheus.exposition.render(registry, accept)``
   in-process, in text 0.0.4 (no ``Accept``) and in protobuf (``Accept:`` the
   protobuf content type), of N labeled counter series
   (``Counter("requests", ..., ["route", "method"])``, ``.labels(route, "GET").inc()``),
   N labeled gauge series (``.set()`` to a fraction) and N/10 histogram series
   (the default buckets, one observation each), one metric per child; both
   formats alternate in the same child, and the table shows protobuf / text.
6. **Event-loop lag** (ms): a worker on asyncio (``anyio.run``) records about
   20,000 operations per second (90 % ``counter.labels(route=...).inc()`` over N
   series, 10 % ``histogram.labels(route=...).observe(x)`` over N/10 series, the
   same 11 buckets for both libraries), in bursts every 5 ms, for 10 s per cell
   (after 1 s of warm-up), while a ticker task sleeps 1 ms at a time and records
   how late it wakes (p50, p99, max). Variants: no metrics (the same load as
   plain dict updates); apytheus in-process with ``await agenerate_metrics()``
   every second; apytheus on Redis with its flusher (``async with
   apytheus.lifespan()``, ``flush_interval`` 1 s), without and with a scrape
   every second; prometheus_client with ``generate_latest`` every second in a
   thread (``anyio.to_thread.run_sync``), as an async app would run it.

Method:

* Every cell (one variant at one size) runs in a fresh child process of this
  script (``--role``), one at a time, so memory and garbage-collector state do
  not leak from one cell into another. All series are created, and recorded
  into once, before anything is measured.
* Timed calls use ``time.perf_counter`` around one real call, with the garbage
  collector on and an untimed ``gc.collect()`` before each call (as
  ``bench_core.py`` times expositions). Each scrape cell runs a warm-up call
  first, which also checks the output (sample lines and counter total).
* Scrape cells run in rounds (2, 1 with ``--quick``): each round starts one
  child per variant and size, in a rotating order, and each child times 4
  scrapes (3 with ``--quick``). Tables show **medians**. The variants live in
  different processes, so their ratios are ratios of medians, not paired.
  Render-format cells run the same way (rounds of one child per metric kind
  and size), each child timing both formats in turn, 4 times each (3 with
  ``--quick``) after a checked warm-up of each.
* A loop-lag maximum is one sample of one window, so each cell also counts the
  ticks late by 5 ms and 25 ms or more, and reports the CPU it used (cores)
  next to the "other" load: what the machine spent busy (``/proc/stat``)
  outside the cell and redis-server during the window. Above about 0.1 cores,
  something else competed, and the tail values are not trustworthy. The run's
  average other load is printed with the metadata.
* The script starts its own ``redis-server`` (a free 127.0.0.1 port, no
  persistence), empties it before each Redis cell, and stops it by PID at the
  end, also after an error or a SIGTERM.

The script is not a test: it always exits 0 (targets are reported, not
enforced). Run it from the repository root::

    python benchmarks/bench_scale.py                       # full run, about 5 minutes
    python benchmarks/bench_scale.py --quick               # 1k and 10k only, under a minute
    python benchmarks/bench_scale.py --markdown            # the tables as Markdown
    python benchmarks/bench_scale.py --chart scale.png     # also a PNG chart (matplotlib)
    python benchmarks/bench_scale.py --parts formats       # only some parts (comma-separated)
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import gc
import json
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_redis  # the Redis server helpers (this folder is on the path)

RESULT_TAG = "BENCH_RESULT "
ENV_CLEARED = (
    "APYTHEUS_BACKEND_CLASS",
    "APYTHEUS_BACKEND_CONFIG",
    "PYTHEUS_BACKEND_CLASS",
    "PYTHEUS_BACKEND_CONFIG",
    "PROMETHEUS_MULTIPROC_DIR",
    "prometheus_multiproc_dir",
)
# apytheus' default buckets, given to both libraries in the loop-lag cells
SAME_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CHANGED = 10  # series changed before each "flush after changes"
TICK_S = 0.001  # the ticker's sleep
BURST_S = 0.005  # the load task's period
HIST_SHARE = 0.1  # share of the load that observes the histogram

MEMORY_VARIANTS: dict[str, str] = {
    "apy_mem": "apytheus in-process",
    "apy_redis": "apytheus Redis-tracked",
    "pc": "prometheus_client",
}
SCRAPE_VARIANTS: dict[str, str] = {
    "apy_redis": "apytheus via Redis",
    "apy_mem": "apytheus in-process",
    "pc": "prometheus_client",
    "pc_mp": "p_c multiprocess (1 writer's files)",
}
VERSIONS = ("apytheus", "prometheus_client", "redis", "hiredis", "anyio")  # in the run's notes
FORMAT_KINDS: dict[str, str] = {
    "counter": "counters",
    "gauge": "gauges",
    "histogram": "histograms (N/10 series)",
}
FORMATS = ("text", "protobuf")  # render protobuf / render text: the target ≤ 1× at 100k
LAG_VARIANTS: dict[str, str] = {
    "none": "no metrics (dict updates)",
    "apy_mem_scrape": "apytheus in-process + async scrape/s",
    "apy_redis": "apytheus Redis, flusher only",
    "apy_redis_scrape": "apytheus Redis, flusher + scrape/s",
    "pc_scrape": "prometheus_client + scrape/s (thread)",
}
LAG_TARGET_VARIANT = "apy_redis_scrape"
# size -> (p99 limit, max limit) in ms, for the target variant
LAG_LIMITS: dict[int, tuple[float | None, float | None]] = {
    10_000: (5.0, 25.0),
    100_000: (None, 50.0),
}


@dataclass(frozen=True)
class Plan:
    """What a run measures (``--quick`` shrinks it)."""

    quick: bool
    sizes: tuple[int, ...]  # memory, flush and scrape cells
    lag_sizes: tuple[int, ...]
    flush_repeats: int  # timed flushes per kind (changed, idle)
    scrape_rounds: int  # child processes per scrape cell
    scrapes_per_child: int
    lag_seconds: float
    lag_warmup: float
    ops_per_s: int


FULL = Plan(False, (1_000, 10_000, 100_000), (1_000, 10_000, 100_000), 15, 2, 4, 10.0, 1.0, 20_000)
QUICK = Plan(True, (1_000, 10_000), (1_000, 10_000), 5, 1, 3, 3.0, 0.5, 20_000)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _k(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


# --------------------------------------------------------------------------- redis-server
class RedisServer(bench_redis.RedisServer):
    """bench_redis' server (started and stopped by its PID), which can be emptied."""

    def __init__(self, binary: str, workdir: str) -> None:
        super().__init__(binary, workdir, "scale")

    def flushall(self) -> None:
        with self.client() as client:
            client.flushall()


find_redis_server = bench_redis.find_redis_server
redis_version = bench_redis.redis_version


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_CLEARED}
    env.update(extra)
    return env


def run_child(role: str, params: dict[str, Any], env: dict[str, str], timeout: float) -> Any:
    """Run one child role to completion (a fresh interpreter) and return its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role", role, "--params"]
    proc = subprocess.run(
        [*cmd, json.dumps(params)],
        env=_child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    raise RuntimeError(
        f"child {role} exited {proc.returncode} without a result:\n{proc.stderr[-3000:]}"
    )


def _values(n: int, prefix: str = "/route/") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _select_backend(p: dict[str, Any], flush_interval: float) -> Any:
    """In a child: select apytheus' Redis backend (before any metric exists), or nothing."""
    if not p.get("redis"):
        return None
    from apytheus.backends import load_backend
    from apytheus.backends.redis import RedisBackend

    return load_backend(
        RedisBackend,
        {"url": p["url"], "key_prefix": p["key_prefix"], "flush_interval": flush_interval},
    )


@contextlib.contextmanager
def count_sends() -> Iterator[list[int]]:
    """Count redis-py ``send_packed_command`` calls (one per command or pipeline sent)."""
    from redis.connection import AbstractConnection

    counter = [0]
    original: Callable[..., Any] = AbstractConnection.send_packed_command

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return original(self, *args, **kwargs)

    AbstractConnection.send_packed_command = wrapper  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def _counter_stats(text: str, name: str) -> tuple[int, int, float]:
    """(sample lines, lines of the counter ``name``, sum of its values) of a text exposition."""
    lines = 0
    mine = 0
    total = 0.0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        lines += 1
        if line.startswith(name + "{"):
            mine += 1
            total += float(line.rsplit(" ", 1)[1])
    return lines, mine, total


def busy_seconds() -> float | None:
    """CPU seconds all CPUs spent busy since boot (steal included: it was not ours); Linux."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(
                int, f.readline().split()[1:9]
            )
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int | None) -> float | None:
    """user + system CPU seconds of process ``pid`` so far (Linux), or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- role: memory
def role_memory(p: dict[str, Any]) -> dict[str, Any]:
    """Bytes kept per series (tracemalloc) after creating n series and recording once."""
    import tracemalloc

    n: int = p["n"]
    values = _values(n)
    warm = _values(100, "/warm/")
    flush: Callable[[], bool] | None = None
    if p["variant"] == "pc":
        import prometheus_client as pc

        pc.disable_created_metrics()  # type: ignore[no-untyped-call]
        registry: Any = pc.CollectorRegistry()
        warmup: Any = pc.Counter("warmup", "bench", ["route"], registry=registry)
        counter: Any = pc.Counter("requests", "bench", ["route"], registry=registry)
    else:
        import apytheus

        backend = _select_backend(p, 3600.0)
        registry = apytheus.CollectorRegistry()
        warmup = apytheus.Counter("warmup", "bench", required_labels=["route"], registry=registry)
        counter = apytheus.Counter(
            "requests", "bench", required_labels=["route"], registry=registry
        )
        if backend is not None:
            flush = backend.flush_sync
    for v in warm:
        warmup.labels(route=v).inc()
    if flush is not None:
        flush()  # connect, load the scripts, send the warm-up series: all before the baseline
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        for v in values:
            counter.labels(route=v).inc()
        ok = flush() if flush is not None else True
        elapsed = time.perf_counter() - start
        gc.collect()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "bytes_per_series": (kept - base) / n,
        "peak_per_series": (peak - base) / n,
        "flush_ok": ok,
        "seconds_traced": elapsed,
    }


# --------------------------------------------------------------------------- role: flush
def role_flush(p: dict[str, Any]) -> dict[str, Any]:
    """Time flush_sync() after 10 series changed, and with nothing changed, holding n series."""
    import apytheus

    n: int = p["n"]
    backend = _select_backend(p, 3600.0)  # the flusher thread never fires: only our flushes
    registry = apytheus.CollectorRegistry()
    counter = apytheus.Counter("requests", "bench", required_labels=["route"], registry=registry)
    children = [counter.labels(route=v) for v in _values(n)]
    for child in children:
        child.inc()

    fields: list[int] = []  # hash fields of each batch written (diagnostics, private API)
    try:
        original_write = backend._store.write

        def counted_write(batch: Any, *args: Any, **kwargs: Any) -> Any:
            fields.append(batch.fields if batch is not None else 0)
            return original_write(batch, *args, **kwargs)

        backend._store.write = counted_write
        watching = True
    except AttributeError:
        watching = False

    start = time.perf_counter()
    first_ok = backend.flush_sync()  # untimed in the table: sends every series
    first_s = time.perf_counter() - start
    backend.flush_sync()  # warm-up of the idle path
    rng = random.Random(1234)
    times: dict[str, list[float]] = {"changed": [], "idle": []}
    trips: dict[str, list[int]] = {"changed": [], "idle": []}
    batch_fields: dict[str, list[int]] = {"changed": [], "idle": []}
    failed = 0
    for rnd in range(p["repeats"]):
        for kind in ("changed", "idle") if rnd % 2 == 0 else ("idle", "changed"):
            if kind == "changed":
                for i in rng.sample(range(n), CHANGED):
                    children[i].inc()
            gc.collect()
            fields.clear()
            with count_sends() as sends:
                start = time.perf_counter()
                ok = backend.flush_sync()
                elapsed = time.perf_counter() - start
            failed += not ok
            times[kind].append(elapsed)
            trips[kind].append(sends[0])
            batch_fields[kind].append(sum(fields))

    expected = float(n + CHANGED * p["repeats"])
    try:  # sanity check: Redis holds exactly what was recorded
        import redis

        values_key = backend._store.keys(counter._family.spec)[1]
        with redis.Redis.from_url(p["url"]) as client:
            in_redis: float | None = sum(float(v) for v in client.hvals(values_key))
    except Exception:
        in_redis = None
    backend.close()
    return {
        "changed": times["changed"],
        "idle": times["idle"],
        "trips_changed": statistics.median(trips["changed"]),
        "trips_idle": statistics.median(trips["idle"]),
        "fields_changed": statistics.median(batch_fields["changed"]) if watching else None,
        "fields_idle": statistics.median(batch_fields["idle"]) if watching else None,
        "first_flush_s": first_s,
        "first_ok": first_ok,
        "failed": failed,
        "redis_total": in_redis,
        "expected_total": expected,
    }


# --------------------------------------------------------------------------- role: scrape
def role_scrape(p: dict[str, Any]) -> dict[str, Any]:
    """Time one scrape of n counter series (after a checked warm-up), ``repeats`` times."""
    n: int = p["n"]
    variant: str = p["variant"]
    values = _values(n)
    backend: Any = None
    if variant in ("pc", "pc_mp"):
        import prometheus_client as pc

        if variant == "pc_mp":
            from prometheus_client import values as pc_values
            from prometheus_client.multiprocess import MultiProcessCollector

            if "MultiProcess" not in getattr(pc_values.ValueClass, "__qualname__", ""):
                raise RuntimeError("prometheus_client is not in multiprocess mode in this child")
        pc.disable_created_metrics()  # type: ignore[no-untyped-call]
        own = pc.CollectorRegistry()
        counter: Any = pc.Counter("requests", "bench", ["route"], registry=own)
        for v in values:
            counter.labels(route=v).inc()
        if variant == "pc_mp":
            registry: Any = pc.CollectorRegistry()
            MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])  # type: ignore[no-untyped-call]
        else:
            registry = own

        def call() -> Any:
            return pc.generate_latest(registry)

    else:
        import apytheus

        backend = _select_backend(p, 3600.0)
        registry = apytheus.CollectorRegistry()
        counter = apytheus.Counter(
            "requests", "bench", required_labels=["route"], registry=registry
        )
        for v in values:
            counter.labels(route=v).inc()
        if backend is not None:
            backend.flush_sync()  # everything flushed before the scrapes

        def call() -> Any:
            return apytheus.generate_metrics(registry)

    with count_sends() as sends:
        out = call()  # warm-up and check
    text = out.decode() if isinstance(out, bytes) else str(out)
    lines, series, total = _counter_stats(text, "requests_total")
    samples: list[float] = []
    for _ in range(p["repeats"]):
        gc.collect()
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    if backend is not None:
        backend.close()
    return {
        "samples": samples,
        "lines": lines,
        "series": series,
        "total": total,
        "bytes": len(out),
        "round_trips": sends[0] if backend is not None else None,
    }


# --------------------------------------------------------------------------- role: formats
def _protobuf_metrics(body: bytes) -> int:
    """How many ``Metric`` entries the delimited ``MetricFamily`` messages of ``body`` hold."""

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = body[pos]
            value |= (byte & 0x7F) << shift
            pos += 1
            if byte < 0x80:
                return value, pos
            shift += 7

    metrics = pos = 0
    while pos < len(body):
        size, pos = varint(pos)
        end = pos + size
        while pos < end:  # the family's fields: all varints or length-delimited
            key, pos = varint(pos)
            value, pos = varint(pos)
            if key & 7 == 2:
                pos += value
            metrics += key == 0x22  # field 4, MetricFamily.metric
    return metrics


def role_formats(p: dict[str, Any]) -> dict[str, Any]:
    """Time ``render()`` of one metric's series in text 0.0.4 and protobuf, in turn."""
    import apytheus
    from apytheus.exposition import PROTOBUF_CONTENT_TYPE, render

    n: int = p["n"]
    kind: str = p["kind"]
    registry = apytheus.CollectorRegistry()
    values = _values(n if kind != "histogram" else max(1, n // 10))
    if kind == "counter":
        counter = apytheus.Counter("requests", "bench", ["route", "method"], registry=registry)
        for v in values:
            counter.labels(v, "GET").inc()
        lines_per_series = 1
    elif kind == "gauge":
        gauge = apytheus.Gauge("in_flight", "bench", ["route", "method"], registry=registry)
        for i, v in enumerate(values):
            gauge.labels(v, "GET").set(i / 8)
        lines_per_series = 1
    else:
        hist = apytheus.Histogram("latency", "bench", ["route", "method"], registry=registry)
        for i, v in enumerate(values):
            hist.labels(v, "GET").observe(i % 1000 / 100)
        lines_per_series = len(SAME_BUCKETS) + 3  # the buckets, +Inf, _count and _sum
    accepts = {"text": None, "protobuf": PROTOBUF_CONTENT_TYPE}
    checks: dict[str, bool] = {}
    sizes: dict[str, int] = {}
    for fmt, accept in accepts.items():  # warm-up and check
        body, _ = render(registry, accept)
        sizes[fmt] = len(body)
        if fmt == "text":
            lines = [x for x in body.decode().splitlines() if x and not x.startswith("#")]
            checks[fmt] = len(lines) == len(values) * lines_per_series
        else:
            checks[fmt] = _protobuf_metrics(body) == len(values)
    samples: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    for i in range(p["repeats"]):
        for fmt in _rotate(list(FORMATS), i):
            gc.collect()
            start = time.perf_counter()
            render(registry, accepts[fmt])
            samples[fmt].append(time.perf_counter() - start)
    return {"samples": samples, "checks": checks, "bytes": sizes, "series": len(values)}


# --------------------------------------------------------------------------- role: loop lag
def _nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


class Window:
    """Whether the measuring window is open (shared by the tasks and the flush watcher)."""

    measuring = False


def role_lag(p: dict[str, Any]) -> dict[str, Any]:
    """A 1 ms ticker's lateness on asyncio while ~20k ops/s are recorded over n + n/10 series."""
    import anyio

    variant: str = p["variant"]
    n: int = p["n"]
    nh = max(1, n // 10)
    values = _values(n)
    hvalues = values[:nh]
    rng = random.Random(42)
    mask = (1 << 16) - 1
    plan: list[tuple[bool, str, float]] = []
    for _ in range(mask + 1):
        if rng.random() < HIST_SHARE:
            plan.append((True, hvalues[rng.randrange(nh)], rng.random() * 2.0))
        else:
            plan.append((False, values[rng.randrange(n)], 0.0))

    window = Window()
    scrape: Callable[[], Awaitable[Any]] | None = None
    backend: Any = None
    lifespan: Any = contextlib.nullcontext()
    if variant == "none":
        counts = dict.fromkeys(values, 0)
        hcounts = {v: [0] * (len(SAME_BUCKETS) + 1) for v in hvalues}
        hsums = dict.fromkeys(hvalues, 0.0)
        bounds = SAME_BUCKETS

        def record(is_hist: bool, v: str, x: float) -> None:
            if is_hist:
                hcounts[v][bisect.bisect_left(bounds, x)] += 1
                hsums[v] += x
            else:
                counts[v] += 1

    else:
        if variant.startswith("apy"):
            import apytheus

            backend = _select_backend(p, 1.0)
            registry: Any = apytheus.CollectorRegistry()
            counter: Any = apytheus.Counter(
                "requests", "bench", required_labels=["route"], registry=registry
            )
            histogram: Any = apytheus.Histogram(
                "latency_seconds",
                "bench",
                required_labels=["route"],
                registry=registry,
                buckets=SAME_BUCKETS,
            )
            if backend is not None:
                lifespan = apytheus.lifespan()
            if variant.endswith("_scrape"):

                async def scrape() -> Any:
                    return await apytheus.agenerate_metrics(registry)

        else:
            import prometheus_client as pc

            pc.disable_created_metrics()  # type: ignore[no-untyped-call]
            registry = pc.CollectorRegistry()
            counter = pc.Counter("requests", "bench", ["route"], registry=registry)
            histogram = pc.Histogram(
                "latency_seconds", "bench", ["route"], registry=registry, buckets=SAME_BUCKETS
            )

            async def scrape() -> Any:
                return await anyio.to_thread.run_sync(pc.generate_latest, registry)

        c_labels = counter.labels
        h_labels = histogram.labels

        def record(is_hist: bool, v: str, x: float) -> None:
            if is_hist:
                h_labels(route=v).observe(x)
            else:
                c_labels(route=v).inc()

    def burst(k: int, count: int) -> None:
        for j in range(k, k + count):
            record(*plan[j & mask])

    # every series exists (recorded once) before anything is measured
    for v in values:
        record(False, v, 0.0)
    for v in hvalues:
        record(True, v, 0.3)
    first_flush_s = None
    flushes: list[float] = []
    if backend is not None:
        start = time.perf_counter()
        backend.flush_sync()  # the first flush (every series) happens before the window
        first_flush_s = time.perf_counter() - start
        try:  # time the flusher's flushes (diagnostics, private API)
            flusher = backend._flusher
            original = flusher.flush_once

            def timed_flush() -> bool:
                t0 = time.perf_counter()
                try:
                    return bool(original())
                finally:
                    if window.measuring:
                        flushes.append(time.perf_counter() - t0)

            flusher.flush_once = timed_flush
        except AttributeError:
            pass
    first_scrape_s = None
    if scrape is not None:
        # One scrape before the window: the first read makes what later reads reuse (a
        # Redis backend keeps the series it parsed), a one-time cost timed on its own.
        start = time.perf_counter()
        anyio.run(scrape, backend="asyncio")
        first_scrape_s = time.perf_counter() - start
    gc.collect()

    result: dict[str, Any] = anyio.run(
        _lag_main, burst, scrape, lifespan, window, p, backend="asyncio"
    )
    result["first_scrape_s"] = first_scrape_s
    result["first_flush_s"] = first_flush_s
    result["flushes"] = flushes
    if backend is not None:
        result["flush_errors"] = backend.flush_errors
        backend.close()
    return result


async def _lag_main(
    burst: Callable[[int, int], None],
    scrape: Callable[[], Awaitable[Any]] | None,
    lifespan: Any,
    window: Window,
    p: dict[str, Any],
) -> dict[str, Any]:
    import anyio

    rate: int = p["ops_per_s"]
    lags: list[float] = []
    scrapes: list[float] = []
    done = [0]

    async def ticker() -> None:
        while True:
            start = time.perf_counter()
            await anyio.sleep(TICK_S)
            late = time.perf_counter() - start - TICK_S
            if window.measuring:
                lags.append(late)

    async def load() -> None:
        start = time.perf_counter()
        while True:
            owed = int((time.perf_counter() - start) * rate) - done[0]
            if owed > 0:
                owed = min(owed, rate // 20)  # at most 50 ms worth of work in one burst
                burst(done[0], owed)
                done[0] += owed
            await anyio.sleep(BURST_S)

    async def scraper() -> None:
        assert scrape is not None
        due = time.perf_counter() + 1.0
        while True:
            await anyio.sleep(max(0.0, due - time.perf_counter()))
            start = time.perf_counter()
            await scrape()
            if window.measuring:
                scrapes.append(time.perf_counter() - start)
            due = max(due + 1.0, time.perf_counter())  # one per second, never overlapping

    async with lifespan:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            tg.start_soon(load)
            if scrape is not None:
                tg.start_soon(scraper)
            await anyio.sleep(p["warmup"])
            ops_before = done[0]
            usage_before = (busy_seconds(), process_cpu_seconds(p.get("redis_pid")))
            cpu_before = time.process_time()  # this process, every thread
            window.measuring = True
            start = time.perf_counter()
            await anyio.sleep(p["duration"])
            window.measuring = False
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu_before
            usage_after = (busy_seconds(), process_cpu_seconds(p.get("redis_pid")))
            ops = done[0] - ops_before
            tg.cancel_scope.cancel()
    other: float | None = None
    if usage_before[0] is not None and usage_after[0] is not None:
        redis_cpu = 0.0
        if usage_before[1] is not None and usage_after[1] is not None:
            redis_cpu = usage_after[1] - usage_before[1]
        other = (usage_after[0] - usage_before[0] - cpu - redis_cpu) / elapsed
    lags.sort()
    return {
        "p50": _nearest_rank(lags, 0.50),
        "p99": _nearest_rank(lags, 0.99),
        "max": lags[-1] if lags else math.nan,
        "ticks": len(lags),
        "late_5ms": sum(1 for x in lags if x >= 0.005),
        "late_25ms": sum(1 for x in lags if x >= 0.025),
        "cpu_cores": cpu / elapsed,
        "other_cores": other,
        "ops_per_s": ops / elapsed,
        "window_s": elapsed,
        "scrapes": scrapes,
    }


ROLES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "memory": role_memory,
    "flush": role_flush,
    "scrape": role_scrape,
    "formats": role_formats,
    "lag": role_lag,
}


# --------------------------------------------------------------------------- results
@dataclass
class Cell:
    """Samples (seconds, or bytes for memory) of one measurement, or the error that stopped it."""

    samples: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples and not self.error else None


@dataclass
class Report:
    """Everything the run prints."""

    meta: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[bool], list[list[str]]]] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str, int], Cell] = field(default_factory=dict)

    def cell(self, part: str, variant: str, n: int) -> Cell:
        return self.cells.setdefault((part, variant, n), Cell())

    def median(self, part: str, variant: str, n: int) -> float | None:
        cell = self.cells.get((part, variant, n))
        return None if cell is None else cell.median()

    def error(self, what: str) -> str:
        text = traceback.format_exc()
        self.errors.append(f"{what}\n{text}")
        _log(f"!! {what}:\n{text}")
        return text

    def verdict(self, what: str, value: float | None, limit: float, unit: str = "") -> str:
        """Record and return 'met' / 'NOT met' / 'n/a' for ``value <= limit``."""
        if value is None or math.isnan(value):
            word = "n/a (error)"
            shown = "n/a"
        else:
            word = "met" if value <= limit else "NOT met"
            shown = f"{value:,.2f}{unit}"
        self.verdicts.append(f"{what}: {shown} (target ≤ {limit:g}{unit}) -> {word}")
        return word


def _rotate(items: Sequence[str], shift: int) -> list[str]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}×"


def _ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 1e3:,.{digits}f}"


def _combine(words: dict[int, str]) -> str:
    """One verdict for a row with a target at several sizes."""
    if not words:
        return "n/a"
    if all(w == "met" for w in words.values()):
        return "met"
    bad = [_k(n) for n, w in words.items() if w == "NOT met"]
    na = [_k(n) for n, w in words.items() if w.startswith("n/a")]
    parts = []
    if bad:
        parts.append("NOT met at " + ", ".join(bad))
    if na:
        parts.append("n/a at " + ", ".join(na))
    return "; ".join(parts)


TIMEOUT_S = 900.0


# --------------------------------------------------------------------------- runs
def _redis_params(server: RedisServer, prefix: str) -> dict[str, Any]:
    server.flushall()  # every Redis cell starts from an empty Redis
    return {"redis": True, "url": server.url, "key_prefix": prefix}


def run_memory(plan: Plan, server: RedisServer, rep: Report) -> None:
    for idx, n in enumerate(plan.sizes):
        for variant in _rotate(list(MEMORY_VARIANTS), idx):
            _log(f"memory: {variant} {n:,} series")
            cell = rep.cell("memory", variant, n)
            try:
                params: dict[str, Any] = {"variant": variant, "n": n}
                if variant == "apy_redis":
                    params.update(_redis_params(server, f"mem{n}"))
                result = run_child("memory", params, {}, TIMEOUT_S)
                cell.samples = [result["bytes_per_series"]]
                cell.info = result
                if not result["flush_ok"]:
                    rep.notes.append(f"memory {variant} {_k(n)}: the flush failed")
            except Exception:
                cell.error = rep.error(f"memory {variant} {n:,} series")


def run_flush(plan: Plan, server: RedisServer, rep: Report) -> None:
    for n in plan.sizes:
        _log(f"flush: {n:,} series, {plan.flush_repeats} × (10 changed, nothing changed)")
        changed, idle = rep.cell("flush", "changed", n), rep.cell("flush", "idle", n)
        try:
            params = {"n": n, "repeats": plan.flush_repeats, **_redis_params(server, f"fl{n}")}
            result = run_child("flush", params, {}, TIMEOUT_S)
            changed.samples, idle.samples = result["changed"], result["idle"]
            changed.info = result
            if result["failed"] or not result["first_ok"]:
                rep.notes.append(f"flush {_k(n)}: {result['failed']} timed flushes failed")
            total, expected = result["redis_total"], result["expected_total"]
            check = (
                "not checked"
                if total is None
                else ("ok" if total == expected else f"MISMATCH: {total:,.0f}")
            )
            rep.notes.append(
                f"flush {_k(n)}: the first flush (every series, untimed in the table) took "
                f"{result['first_flush_s'] * 1e3:,.0f} ms; Redis total after the run "
                f"{expected:,.0f} expected: {check}"
            )
        except Exception:
            changed.error = idle.error = rep.error(f"flush {n:,} series")


def run_scrape(plan: Plan, server: RedisServer, rep: Report) -> None:
    for rnd in range(plan.scrape_rounds):
        for idx, n in enumerate(plan.sizes):
            for variant in _rotate(list(SCRAPE_VARIANTS), rnd + idx):
                cell = rep.cell("scrape", variant, n)
                if cell.error:
                    continue
                _log(f"scrape round {rnd + 1}/{plan.scrape_rounds}: {variant} {n:,} series")
                try:
                    params: dict[str, Any] = {
                        "variant": variant,
                        "n": n,
                        "repeats": plan.scrapes_per_child,
                    }
                    if variant == "apy_redis":
                        params.update(_redis_params(server, f"sc{n}"))
                    with tempfile.TemporaryDirectory(prefix="bench-scale-mp-") as mp_dir:
                        env = {"PROMETHEUS_MULTIPROC_DIR": mp_dir} if variant == "pc_mp" else {}
                        result = run_child("scrape", params, env, TIMEOUT_S)
                    cell.samples.extend(result["samples"])
                    cell.info = result
                    if result["series"] != n or result["total"] != n:
                        rep.notes.append(
                            f"scrape {variant} {_k(n)}: output MISMATCH: {result['series']:,} "
                            f"counter lines, total {result['total']:,.0f} (expected {n:,})"
                        )
                except Exception:
                    cell.error = rep.error(f"scrape {variant} {n:,} series")


def run_formats(plan: Plan, server: RedisServer, rep: Report) -> None:
    for rnd in range(plan.scrape_rounds):
        for idx, n in enumerate(plan.sizes):
            for kind in _rotate(list(FORMAT_KINDS), rnd + idx):
                cells = {fmt: rep.cell(f"render_{fmt}", kind, n) for fmt in FORMATS}
                if any(c.error for c in cells.values()):
                    continue
                _log(f"render formats round {rnd + 1}/{plan.scrape_rounds}: {kind} {n:,}")
                try:
                    params = {"kind": kind, "n": n, "repeats": plan.scrapes_per_child}
                    result = run_child("formats", params, {}, TIMEOUT_S)
                    for fmt, cell in cells.items():
                        cell.samples.extend(result["samples"][fmt])
                        cell.info = result
                    bad = [fmt for fmt, ok in result["checks"].items() if not ok]
                    if bad:
                        rep.notes.append(
                            f"render formats {kind} {_k(n)}: output MISMATCH in {', '.join(bad)} "
                            f"(expected {result['series']:,} series)"
                        )
                except Exception:
                    for cell in cells.values():
                        cell.error = rep.error(f"render formats {kind} {n:,} series")


def run_lag(plan: Plan, server: RedisServer, rep: Report) -> None:
    for idx, n in enumerate(plan.lag_sizes):
        for variant in _rotate(list(LAG_VARIANTS), idx):
            _log(f"loop lag: {variant} {n:,} + {n // 10:,} series, {plan.lag_seconds:g} s")
            cell = rep.cell("lag", variant, n)
            try:
                params: dict[str, Any] = {
                    "variant": variant,
                    "n": n,
                    "ops_per_s": plan.ops_per_s,
                    "warmup": plan.lag_warmup,
                    "duration": plan.lag_seconds,
                }
                if variant.startswith("apy_redis"):
                    params.update(_redis_params(server, f"lag{n}"))
                params["redis_pid"] = server.proc.pid if server.proc else None
                result = run_child("lag", params, {}, TIMEOUT_S)
                cell.samples = [result["max"]]
                cell.info = result
                if result.get("first_scrape_s") is not None:
                    rep.notes.append(
                        f"loop lag {variant} {_k(n)}: the first scrape (before the window) took "
                        f"{result['first_scrape_s'] * 1e3:,.0f} ms"
                    )
                if result.get("flush_errors"):
                    rep.notes.append(
                        f"loop lag {variant} {_k(n)}: {result['flush_errors']} flush errors"
                    )
            except Exception:
                cell.error = rep.error(f"loop lag {variant} {n:,} series")


# --------------------------------------------------------------------------- tables
def build_main_table(plan: Plan, rep: Report) -> None:
    sizes = plan.sizes
    small, big = sizes[0], sizes[-1]
    mid = sizes[-2] if len(sizes) > 1 else big
    header = ["measure", *(f"{n:,} series" for n in sizes), "target", "verdict"]
    right = [False, *([True] * len(sizes)), False, False]
    body: list[list[str]] = []

    def values(fmt: Callable[[int], str]) -> list[str]:
        return [fmt(n) for n in sizes]

    def med_cell(part: str, variant: str) -> Callable[[int], float | None]:
        return lambda n: rep.median(part, variant, n)

    def show(part: str, variant: str, fmt: Callable[[float], str]) -> Callable[[int], str]:
        def one(n: int) -> str:
            cell = rep.cells.get((part, variant, n))
            if cell is None:
                return "not run"
            if cell.error:
                return "error"
            m = cell.median()
            return "-" if m is None else fmt(m)

        return one

    # 1. memory
    for variant, title in MEMORY_VARIANTS.items():
        body.append(
            [
                f"memory per series, {title} (bytes)",
                *values(show("memory", variant, lambda v: f"{v:,.0f}")),
                "",
                "",
            ]
        )
    pc_mem = med_cell("memory", "pc")
    for variant, title, limit in (
        ("apy_mem", "in-process / p_c", 1.0),
        ("apy_redis", "Redis-tracked / p_c", 1.3),
    ):
        ratios = {n: _ratio(rep.median("memory", variant, n), pc_mem(n)) for n in sizes}
        words = {
            n: rep.verdict(f"memory per series at {_k(n)}: apytheus {title}", r, limit, "×")
            for n, r in ratios.items()
        }
        body.append(
            [
                f"  memory, apytheus {title}",
                *(_x(ratios[n]) for n in sizes),
                f"≤ {limit:g}× at each size",
                _combine(words),
            ]
        )

    # 2-3. flush
    for kind, title in (
        ("changed", f"Redis flush after {CHANGED} series changed (ms)"),
        ("idle", "Redis flush, nothing changed (ms)"),
    ):
        body.append([title, *values(show("flush", kind, lambda v: f"{v * 1e3:,.2f}")), "", ""])
        base = rep.median("flush", kind, small)
        ratios = {n: _ratio(rep.median("flush", kind, n), base) for n in sizes}
        word = rep.verdict(
            f"Redis flush ({'10 changed' if kind == 'changed' else 'nothing changed'}): "
            f"{_k(big)} / {_k(small)}",
            ratios[big],
            3.0,
            "×",
        )
        body.append(
            [
                f"  vs {_k(small)}",
                *(_x(ratios[n]) for n in sizes),
                f"≤ 3× at {_k(big)}",
                word,
            ]
        )

    def flush_info(key: str, fmt: str = "{:g}") -> Callable[[int], str]:
        def one(n: int) -> str:
            info = rep.cells.get(("flush", "changed", n), Cell()).info
            value = info.get(key)
            return "-" if value is None else fmt.format(value)

        return one

    body.append(
        [
            "  round trips per flush (10 changed / nothing changed)",
            *(f"{flush_info('trips_changed')(n)} / {flush_info('trips_idle')(n)}" for n in sizes),
            "",
            "",
        ]
    )
    body.append(
        [
            "  hash fields in the batch (10 changed / nothing changed)",
            *(f"{flush_info('fields_changed')(n)} / {flush_info('fields_idle')(n)}" for n in sizes),
            "",
            "",
        ]
    )

    # 4. scrape
    for variant, title in SCRAPE_VARIANTS.items():
        body.append(
            [f"scrape, {title} (ms)", *values(show("scrape", variant, _ms)), "", ""],
        )
    for variant, title in SCRAPE_VARIANTS.items():
        body.append(
            [
                f"  per series, {title} (µs)",
                *(
                    _per_series(rep.median("scrape", variant, n), n)
                    if rep.median("scrape", variant, n) is not None
                    else "-"
                    for n in sizes
                ),
                "",
                "",
            ]
        )
    redis_vs_mem = {
        n: _ratio(rep.median("scrape", "apy_redis", n), rep.median("scrape", "apy_mem", n))
        for n in sizes
    }
    word = rep.verdict(
        f"scrape at {_k(big)}: apytheus via Redis / apytheus in-process",
        redis_vs_mem[big],
        2.5,
        "×",
    )
    body.append(
        [
            "  apytheus via Redis / in-process",
            *(_x(redis_vs_mem[n]) for n in sizes),
            f"≤ 2.5× at {_k(big)}",
            word,
        ]
    )
    growth: dict[int, float | None] = {}
    for prev, n in zip(sizes, sizes[1:], strict=False):
        a, b = rep.median("scrape", "apy_redis", n), rep.median("scrape", "apy_redis", prev)
        growth[n] = None if a is None or b is None else _ratio(a / n, b / prev)
    word = rep.verdict(
        f"scrape via Redis, cost per series: {_k(big)} / {_k(mid)}",
        growth.get(big),
        1.2,
        "×",
    )
    body.append(
        [
            "  apytheus via Redis, per series vs the previous size",
            *(_x(growth.get(n)) for n in sizes),
            f"≤ 1.2× at {_k(big)} vs {_k(mid)}",
            word,
        ]
    )
    mem_vs_pc = {
        n: _ratio(rep.median("scrape", "apy_mem", n), rep.median("scrape", "pc", n)) for n in sizes
    }
    words = {
        n: rep.verdict(f"scrape at {_k(n)}: apytheus in-process / p_c", r, 0.3, "×")
        for n, r in mem_vs_pc.items()
    }
    body.append(
        [
            "  apytheus in-process / p_c",
            *(_x(mem_vs_pc[n]) for n in sizes),
            "≤ 0.3× at each size",
            _combine(words),
        ]
    )
    redis_vs_mp = {
        n: _ratio(rep.median("scrape", "apy_redis", n), rep.median("scrape", "pc_mp", n))
        for n in sizes
    }
    body.append(
        [
            "  apytheus via Redis / p_c multiprocess",
            *(_x(redis_vs_mp[n]) for n in sizes),
            "",
            "no target",
        ]
    )
    rep.tables.append(
        ("Memory, Redis flush and scrape, by counter series per worker", header, right, body)
    )


def _per_series(seconds: float | None, n: int) -> str:
    return "-" if seconds is None else f"{seconds / n * 1e6:,.2f}"


def _stats_ms(values: Sequence[float]) -> str:
    if not values:
        return "0"
    return f"{len(values)}: {_ms(statistics.median(values))} / {_ms(max(values))}"


def _cores(own: float, other: float | None) -> str:
    return f"{own:.2f} / " + ("n/a" if other is None else f"{max(other, 0.0):.2f}")


def build_format_table(plan: Plan, rep: Report) -> None:
    sizes = plan.sizes
    big = sizes[-1]
    header = ["measure", *(f"{n:,} series" for n in sizes), "target", "verdict"]
    right = [False, *([True] * len(sizes)), False, False]
    body: list[list[str]] = []
    for kind, title in FORMAT_KINDS.items():
        for fmt, shown in (("text", "text 0.0.4"), ("protobuf", "protobuf")):
            medians = [rep.median(f"render_{fmt}", kind, n) for n in sizes]
            body.append([f"render {shown}, {title} (ms)", *(_ms(m) for m in medians), "", ""])
        ratios = {
            n: _ratio(rep.median("render_protobuf", kind, n), rep.median("render_text", kind, n))
            for n in sizes
        }
        word = rep.verdict(f"render at {_k(big)}, {title}: protobuf / text", ratios[big], 1.0, "×")
        body.append(
            [
                f"  render protobuf / render text, {title}",
                *(_x(ratios[n]) for n in sizes),
                f"≤ 1× at {_k(big)}",
                word,
            ]
        )
    rep.tables.append(
        ("Render formats in-process (render()), by series per worker", header, right, body)
    )


def build_lag_table(plan: Plan, rep: Report) -> None:
    header = [
        "series (counter + histogram)",
        "variant",
        "p50 ms",
        "p99 ms",
        "max ms",
        "ticks ≥ 5 / ≥ 25 ms",
        "ops/s",
        "scrapes: n: median / max ms",
        "flusher flushes: n: median / max ms",
        "CPU (cores): own / other",
        "target",
        "verdict",
    ]
    right = [False, False, True, True, True, True, True, True, True, True, False, False]
    body: list[list[str]] = []
    for n in plan.lag_sizes:
        p99_limit, max_limit = LAG_LIMITS.get(n, (None, None))
        target = ", ".join(
            f"{what} ≤ {limit:g} ms"
            for what, limit in (("p99", p99_limit), ("max", max_limit))
            if limit is not None
        )
        for variant, title in LAG_VARIANTS.items():
            cell = rep.cells.get(("lag", variant, n))
            series = f"{n:,} + {n // 10:,}"
            if cell is None or cell.error:
                word = "error" if cell is not None else "not run"
                body.append([series, title, word, *([""] * (len(header) - 3))])
                continue
            info = cell.info
            words: list[str] = []
            for what, limit in (("p99", p99_limit), ("max", max_limit)):
                if limit is None:
                    continue
                value = info[what] * 1e3
                if variant == LAG_TARGET_VARIANT:
                    words.append(
                        rep.verdict(f"loop lag at {_k(n)}, {title}: {what}", value, limit, " ms")
                    )
                else:
                    words.append("met" if value <= limit else "NOT met")
            if not words:
                verdict = "no target"
            elif variant == LAG_TARGET_VARIANT:
                verdict = "met" if all(w == "met" for w in words) else "NOT met"
            else:
                verdict = "(info) " + ("within" if all(w == "met" for w in words) else "outside")
            body.append(
                [
                    series,
                    title,
                    _ms(info["p50"], 2),
                    _ms(info["p99"], 2),
                    _ms(info["max"], 1),
                    f"{info['late_5ms']} / {info['late_25ms']} of {info['ticks']:,}",
                    f"{info['ops_per_s']:,.0f}",
                    _stats_ms(info["scrapes"]) if "scrape" in variant else "-",
                    _stats_ms(info["flushes"]) if variant.startswith("apy_redis") else "-",
                    _cores(info["cpu_cores"], info["other_cores"]),
                    target if variant == LAG_TARGET_VARIANT else "",
                    verdict,
                ]
            )
    rep.tables.append(
        (
            f"Event-loop lag of a 1 ms ticker ({plan.lag_seconds:g} s per cell, "
            f"~{plan.ops_per_s:,} ops/s)",
            header,
            right,
            body,
        )
    )


# --------------------------------------------------------------------------- chart
def write_chart(path: str, plan: Plan, rep: Report) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, NullLocator
    except ImportError:
        rep.notes.append(f"chart skipped: matplotlib is not installed ({path} not written)")
        _log("chart skipped: matplotlib is not installed")
        return
    try:
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
        styles = {
            "apy_mem": ("tab:blue", "o", "-"),
            "apy_redis": ("tab:green", "s", "-"),
            "pc": ("tab:red", "^", "--"),
            "pc_mp": ("tab:orange", "v", "--"),
        }
        for variant, title in SCRAPE_VARIANTS.items():
            points = [
                (n, m / n * 1e6)
                for n in plan.sizes
                if (m := rep.median("scrape", variant, n)) is not None
            ]
            if points:
                color, marker, line = styles[variant]
                xs, ys = zip(*points, strict=True)
                left.plot(xs, ys, color=color, marker=marker, linestyle=line, label=title)
        left.set_xscale("log")
        left.set_ylim(bottom=0)
        left.set_xlabel("counter series per worker")
        left.set_ylabel("scrape cost per series (µs)")
        left.set_title("Scrape cost per series")
        left.grid(True, which="both", alpha=0.3)
        left.legend(fontsize="small")

        lag_styles = {
            "none": ("tab:gray", "x", ":"),
            "apy_mem_scrape": ("tab:blue", "o", "-"),
            "apy_redis": ("tab:olive", "D", "-"),
            "apy_redis_scrape": ("tab:green", "s", "-"),
            "pc_scrape": ("tab:red", "^", "--"),
        }
        for variant, title in LAG_VARIANTS.items():
            points = [
                (n, cell.info["max"] * 1e3)
                for n in plan.lag_sizes
                if (cell := rep.cells.get(("lag", variant, n))) and not cell.error
            ]
            if points:
                color, marker, line = lag_styles[variant]
                xs, ys = zip(*points, strict=True)
                right.plot(xs, ys, color=color, marker=marker, linestyle=line, label=title)
        targets = [(n, lim[1]) for n, lim in LAG_LIMITS.items() if n in plan.lag_sizes and lim[1]]
        if targets:
            xs, ys = zip(*targets, strict=True)
            right.scatter(xs, ys, marker="_", s=600, color="black", zorder=5, label="target (max)")
        right.set_xscale("log")
        right.set_yscale("log")
        right.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        right.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
        for axis, sizes in ((left, plan.sizes), (right, plan.lag_sizes)):
            axis.set_xticks(list(sizes), [_k(n) for n in sizes])
            axis.xaxis.set_minor_locator(NullLocator())
        right.set_xlabel("counter series per worker (+ 1/10 as many histogram series)")
        right.set_ylabel("loop lag, max (ms)")
        right.set_title("Event-loop lag (max) under ~20k ops/s")
        right.grid(True, which="both", alpha=0.3)
        right.legend(fontsize="small")
        fig.suptitle("apytheus vs prometheus_client by series per worker")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        rep.notes.append(f"chart written to {path}")
    except Exception:
        rep.error(f"writing the chart {path}")


# --------------------------------------------------------------------------- report
def _method_notes(plan: Plan, rep: Report, parts: Sequence[str]) -> None:
    sizes = ", ".join(_k(n) for n in plan.sizes)
    if plan.quick:
        rep.notes.insert(
            0,
            f"QUICK run: sizes {sizes} only; the targets stated at 100k are evaluated at "
            f"{_k(plan.sizes[-1])} (and 'per series at 100k vs 10k' as {_k(plan.sizes[-1])} vs "
            f"{_k(plan.sizes[-2])}): indicative only",
        )
    notes = {
        "memory": (
            "memory: tracemalloc (Python allocations only: not the Redis server's memory, not "
            "prometheus_client multiprocess' mmap files, so p_c multiprocess has no memory row); "
            "the label value strings are created before the baseline (the app's), as are the "
            "metric objects; the Redis variant includes its one flush (its buffer holds what it "
            "sent, plus what the connection keeps)"
        ),
        "flush": (
            f"flush: flush_interval 3600 s (the flusher never fires); {plan.flush_repeats} timed "
            "flush_sync() calls per kind, alternating, each after an untimed gc.collect(); round "
            "trips = redis-py send_packed_command calls; hash fields = Batch.fields of the "
            "batches written (private API, diagnostics only)"
        ),
        "scrape": (
            f"scrape: {plan.scrape_rounds} round(s) × {plan.scrapes_per_child} timed scrapes per "
            "cell, one fresh process per round and cell, after an untimed warm-up scrape that is "
            "checked (counter lines and total = series); ratios are ratios of medians from "
            "different processes (not paired). apytheus via Redis: the worker holding every "
            "series scrapes itself, so each scrape also runs its (unchanged) flush before reading "
            "Redis, as generate_metrics does. p_c multiprocess: the same process wrote the "
            "series (one .db file) and scrapes them through a MultiProcessCollector"
        ),
        "formats": (
            f"render formats: {plan.scrape_rounds} round(s) of one fresh process per metric kind "
            f"and size, each timing apytheus.exposition.render() {plan.scrapes_per_child} times "
            "per format, text 0.0.4 and protobuf in turn, each call after an untimed "
            "gc.collect(), after a checked warm-up of each (sample lines; protobuf Metric "
            "entries = series); in-process backend; protobuf / text is a ratio of medians of "
            "calls made in the same processes"
        ),
        "lag": (
            "loop lag: lateness of anyio.sleep(0.001) on asyncio (p50/p99/max over the window, "
            f"{plan.lag_warmup:g} s of warm-up excluded); the load runs every "
            f"{BURST_S * 1e3:g} ms, {1 - HIST_SHARE:.0%} counter inc() / {HIST_SHARE:.0%} "
            "histogram observe(), labels() looked up per call; every series is created, and the "
            "Redis backend's first flush (all series) and one first scrape (its first read makes "
            "the series later reads reuse: a one-time cost, with a full garbage collection at "
            "100k series) done before the window; scrapes start every "
            "second (never overlapping); 'flusher flushes' are the lifespan flusher's own, timed "
            "in its worker thread (a scrape's own flush is inside the scrape's time). The "
            "baseline shows the ticker's floor on this machine (timer and scheduling overshoot). "
            f"max is one sample of one {plan.lag_seconds:g} s window: read it with the "
            "'ticks ≥ 5 / ≥ 25 ms' counts "
            "and with 'other' CPU (cores the machine spent busy outside this cell and "
            "redis-server during the window): above about 0.1, something else competed for the "
            "CPUs, and the tail values are not trustworthy"
        ),
    }
    rep.notes.extend(note for part, note in notes.items() if part in parts)


PARTS: dict[str, Callable[[Plan, RedisServer, Report], None]] = {
    "memory": run_memory,
    "flush": run_flush,
    "scrape": run_scrape,
    "formats": run_formats,
    "lag": run_lag,
}


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of its children that ended (redis-server included)."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(f"signal {signum}")  # run the finally blocks: stop our redis-server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k only, shorter cells")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--chart", metavar="PATH", help="write a PNG chart (needs matplotlib)")
    parser.add_argument("--lag-seconds", type=float, help="seconds per loop-lag cell (10, quick 3)")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"what to run, comma-separated, of {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument("--redis-server", help="redis-server binary (default: /usr/bin, PATH)")
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role:  # a child process of this script
        result = ROLES[args.role](json.loads(args.params))
        print(RESULT_TAG + json.dumps(result), flush=True)
        return 0

    for name in ENV_CLEARED:
        os.environ.pop(name, None)
    signal.signal(signal.SIGTERM, _terminate)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {', '.join(unknown)}: choose among {', '.join(PARTS)}")
    plan = QUICK if args.quick else FULL
    if args.lag_seconds:
        plan = Plan(**{**plan.__dict__, "lag_seconds": args.lag_seconds})
    rep = Report()
    digest_before = bench_redis.source_digest("apytheus")
    busy_before = busy_seconds()
    cpu_before = _own_cpu_seconds()
    started = time.perf_counter()
    start_date = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    binary = find_redis_server(args.redis_server)
    workdir = tempfile.TemporaryDirectory(prefix="bench-scale-")
    server = RedisServer(binary, workdir.name)
    try:
        server.start()
        for what, run in PARTS.items():
            if what not in parts:
                continue
            part_start = time.perf_counter()
            try:
                run(plan, server, rep)
            except Exception:
                rep.error(f"part {what}")
            _log(f"{what}: {time.perf_counter() - part_start:.0f} s")
    finally:
        server.stop()
        workdir.cleanup()
    elapsed = time.perf_counter() - started
    busy_after = busy_seconds()
    other_load = (
        None
        if busy_before is None or busy_after is None
        else (busy_after - busy_before - (_own_cpu_seconds() - cpu_before)) / elapsed
    )
    if other_load is not None and other_load > 0.1:
        rep.notes.insert(
            0,
            f"WARNING: other processes kept {other_load:.2f} cores busy on average during the "
            f"run (of {os.cpu_count()}): times, and the loop-lag tails most, are inflated; see "
            "the per-cell 'other' CPU in the loop-lag table",
        )
    digest_after = bench_redis.source_digest("apytheus")
    if digest_after != digest_before:
        rep.notes.insert(
            0,
            f"WARNING: the apytheus source changed during the run ({digest_before} at the start, "
            f"{digest_after} at the end): cells may have measured different code",
        )

    for needed, build in (
        (("memory", "flush", "scrape"), build_main_table),
        (("formats",), build_format_table),
        (("lag",), build_lag_table),
    ):
        if any(part in parts for part in needed):
            try:
                build(plan, rep)
            except Exception:
                rep.error(f"building the table ({build.__name__})")
    _method_notes(plan, rep, parts)
    if args.chart:
        write_chart(args.chart, plan, rep)
    mode = (
        f"QUICK: sizes {', '.join(_k(n) for n in plan.sizes)}"
        if plan.quick
        else f"full: sizes {', '.join(_k(n) for n in plan.sizes)}"
    )
    rep.meta = [
        f"date: {start_date} (start of the run); run took {elapsed:.0f} s",
        f"python: {platform.python_implementation()} {platform.python_version()}",
        f"platform: {platform.platform()}",
        f"cpus: {os.cpu_count()}",
        f"versions: {bench_redis.versions(VERSIONS)}",
        f"redis-server: {binary} ({redis_version(binary)}), --save '' --appendonly no",
        f"apytheus source: {digest_after}",
        "other load during the run (CPU busy minus this script, its children and "
        "redis-server): "
        + ("n/a" if other_load is None else f"{max(other_load, 0.0):.2f} cores on average"),
        f"mode: {mode}; loop-lag sizes {', '.join(_k(n) for n in plan.lag_sizes)}, "
        f"{plan.lag_seconds:g} s per cell; values are medians",
        f"parts: {', '.join(p for p in PARTS if p in parts)}",
    ]
    bench_redis.print_report(rep, args.markdown)  # type: ignore[arg-type]  # the same fields
    return 0


if __name__ == "__main__":
    try:
        main()
    except SystemExit as exc:  # --help, or SIGTERM (after our redis-server was stopped)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:  # not a test: report and exit 0 whatever happens
        traceback.print_exc()
    sys.exit(0)
