#!/usr/bin/env python
"""Redis backend benchmark: apytheus vs pytheus' Redis backend vs prometheus_client multiprocess.

Four parts, measured side by side in one run, against redis-server processes
that this script starts (on free 127.0.0.1 ports, no persistence) and stops:

1. **Record cost** (ns per call, medians): ``Counter.inc()``, a cached labeled
   child's ``inc()`` and ``Histogram.observe(0.3)`` on apytheus with the
   in-process backend and with the Redis backend (the *same* metric objects,
   in this process, the backend switched with ``load_backend`` before each
   block, rounds interleaved), on pytheus' ``MultiProcessRedisBackend`` (this
   process) and on prometheus_client in multiprocess mode (a child process,
   because ``PROMETHEUS_MULTIPROC_DIR`` must be set before the import).
2. **Scrape** (ms per scrape, medians): 8 worker processes per library write
   one labeled counter (10,000 series) and one labeled histogram (1,000
   series, each library's default buckets); each series is written by exactly
   one worker (worker ``w`` takes the label values ``i`` with ``i % 8 == w``).
   This process then times apytheus' ``generate_metrics(registry)``, pytheus'
   ``generate_metrics(registry)`` and prometheus_client's ``generate_latest``
   over a ``MultiProcessCollector``. A second row lets every worker write every
   series (apytheus and prometheus_client only: pytheus would need minutes).
3. **Buffer aggregation**: 100,000 and 1,000,000 increments over the same
   10,000 series of apytheus' Redis backend between two flushes: the flushes,
   the fields in the batch, the EVALSHA calls and the HGET / HSET / ZADD calls
   the scripts ran, as Redis counted them (``INFO commandstats`` deltas; no
   removals are queued, so HKEYS / HDEL must stay at 0), the round trips
   (calls of redis-py's ``send_packed_command``: one per pipeline or command
   sent), and the memory the recording and the flush allocate (``tracemalloc``).
4. **Native histogram scrape** (apytheus only; ms per scrape, medians): 8 worker
   processes write 1,000 histogram series (label ``route``, each series written
   by one worker, as in part 2's split row), each with the same 50 observations
   (log-uniform between 1 ms and 10 s, seeded by the series) in three
   histograms: classic (default buckets), native with the classic buckets kept
   (``native_bucket_factor=1.1``) and native only (``buckets=()``). This process
   then times ``apytheus.exposition.render(registry, accept)`` of each, in
   protobuf and in text 0.0.4, and reports the Redis hash fields (HLEN of the
   values hash), the bodies' sizes and the ratios native / classic.

The script is not a test: it always exits 0 (targets are reported, not
enforced). Run it from the repository root::

    python benchmarks/bench_redis.py                 # full run, about a minute
    python benchmarks/bench_redis.py --quick         # smaller sizes, fewer repeats, ~25 s
    python benchmarks/bench_redis.py --markdown      # the tables as Markdown
    python benchmarks/bench_redis.py --parts native  # only some parts (comma-separated)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import logging
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import timeit
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKERS = 8
RESULT_TAG = "BENCH_RESULT "
ENV_CLEARED = (
    "APYTHEUS_BACKEND_CLASS",
    "APYTHEUS_BACKEND_CONFIG",
    "PYTHEUS_BACKEND_CLASS",
    "PYTHEUS_BACKEND_CONFIG",
    "PROMETHEUS_MULTIPROC_DIR",
    "prometheus_multiproc_dir",
)
RECORD_OPS: tuple[tuple[str, str], ...] = (
    ("inc", "`Counter.inc()`"),
    ("child_inc", "cached labeled child `child.inc()`"),
    ("observe", "`Histogram.observe(0.3)`"),
    ("ref", "reference: `d[k] += 1` (no library)"),
)


@dataclass(frozen=True)
class Sizes:
    """What a run measures (``--quick`` shrinks it)."""

    quick: bool
    repeats: int  # timed repeats per record cell, and timed scrapes per library
    target_s: float  # seconds per timed record loop
    counter_series: int
    histogram_series: int
    agg_series: int
    agg_increments: tuple[int, ...]
    native_series: int  # part 4: histogram series per variant
    native_observations: int  # part 4: observations per series


FULL = Sizes(False, 7, 0.2, 10_000, 1_000, 10_000, (100_000, 1_000_000), 1_000, 50)
QUICK = Sizes(True, 3, 0.05, 2_000, 200, 10_000, (100_000, 1_000_000), 200, 50)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- redis-server
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_redis_server(explicit: str | None) -> str:
    """The redis-server binary: ``--redis-server``, else /usr/bin's, else the one on PATH."""
    if explicit:
        return explicit
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no redis-server binary found (pass --redis-server PATH)")


def _ping(port: int) -> bool:
    import redis

    try:
        with redis.Redis(host="127.0.0.1", port=port) as client:
            return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


class RedisServer:
    """One redis-server process started by this script (and stopped by its PID)."""

    def __init__(self, binary: str, workdir: str, name: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.name = name
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for _attempt in range(5):
            self.port = _free_port()
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self.workdir,
                    "--daemonize",
                    "no",
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _ping(self.port):
                    _log(f"redis-server {self.name} pid {self.proc.pid} on port {self.port}")
                    return
                time.sleep(0.05)
            self.stop()  # port taken meanwhile, or too slow: try another port
        raise RuntimeError(f"could not start {self.binary}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def redis_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        words = [w for w in out.stdout.split() if w.startswith(("v=", "malloc="))]
        return " ".join(words) or out.stdout.strip()
    except Exception as exc:  # a report, not a requirement
        return f"unknown ({exc})"


# --------------------------------------------------------------------------- child processes
def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_CLEARED}
    env.update(extra)
    return env


def _child_cmd(role: str, params: dict[str, Any]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--role", role, "--params"] + [
        json.dumps(params)
    ]


def _parse_result(role: str, proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            result: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
            return result
    raise RuntimeError(
        f"child {role} exited {proc.returncode} without a result:\n{proc.stderr[-3000:]}"
    )


def run_child(role: str, params: dict[str, Any], env: dict[str, str], timeout: float) -> Any:
    """Run one child role to completion and return its JSON result."""
    proc = subprocess.run(
        _child_cmd(role, params),
        env=_child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return _parse_result(role, proc)


def run_children(
    role: str, params: Sequence[dict[str, Any]], env: dict[str, str], timeout: float
) -> tuple[list[Any], float]:
    """Run several children of one role at once; return their results and the wall time."""
    procs: list[subprocess.Popen[str]] = []
    started = time.perf_counter()
    try:
        procs.extend(  # extend() keeps the ones started if a later start fails
            subprocess.Popen(
                _child_cmd(role, p),
                env=_child_env(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for p in params
        )
        results: list[Any] = []
        deadline = time.monotonic() + timeout
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append(
                _parse_result(
                    role, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
                )
            )
        return results, time.perf_counter() - started
    finally:
        for proc in procs:  # only on errors: stop the children we started, by their PID
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _share(index: int, workers: int, total: int, mode: str) -> range:
    """The label values (as indices) one worker writes."""
    return range(total) if mode == "all" else range(index, total, workers)


def role_apytheus_worker(p: dict[str, Any]) -> dict[str, Any]:
    """A worker with the Redis backend selected by the environment."""
    import apytheus
    from apytheus.backends import get_backend

    backend: Any = get_backend()
    if type(backend).__name__ != "RedisBackend":
        raise RuntimeError(f"the environment did not select the Redis backend: {backend!r}")
    registry = apytheus.CollectorRegistry()
    name = p["name"]
    counter = apytheus.Counter(
        f"{name}_requests", "bench", required_labels=["k"], registry=registry
    )
    histogram = apytheus.Histogram(
        f"{name}_latency_seconds", "bench", required_labels=["k"], registry=registry
    )
    start = time.perf_counter()
    for i in _share(p["index"], p["workers"], p["counter_series"], p["mode"]):
        counter.labels(k=f"v{i}").inc()
    for i in _share(p["index"], p["workers"], p["histogram_series"], p["mode"]):
        histogram.labels(k=f"v{i}").observe((i % 100) / 40)
    recorded = time.perf_counter() - start
    backend.close()  # the final flush (atexit would do the same)
    return {
        "record_s": recorded,
        "total_s": time.perf_counter() - start,
        "flush_errors": backend.flush_errors,
    }


def role_pytheus_worker(p: dict[str, Any]) -> dict[str, Any]:
    """A worker with pytheus' MultiProcessRedisBackend."""
    from pytheus.backends.base import load_backend as p_load
    from pytheus.backends.redis import MultiProcessRedisBackend
    from pytheus.metrics import Counter, Histogram
    from pytheus.registry import CollectorRegistry

    p_load(
        backend_class=MultiProcessRedisBackend,
        backend_config={"host": "127.0.0.1", "port": p["port"]},
    )
    registry = CollectorRegistry()
    name = p["name"]
    counter = Counter(f"{name}_requests_total", "bench", required_labels=["k"], registry=registry)
    histogram = Histogram(
        f"{name}_latency_seconds", "bench", required_labels=["k"], registry=registry
    )
    start = time.perf_counter()
    for i in _share(p["index"], p["workers"], p["counter_series"], p["mode"]):
        counter.labels(k=f"v{i}").inc()
    for i in _share(p["index"], p["workers"], p["histogram_series"], p["mode"]):
        histogram.labels(k=f"v{i}").observe((i % 100) / 40)
    elapsed = time.perf_counter() - start
    return {"record_s": elapsed, "total_s": elapsed, "flush_errors": 0}


NATIVE_FACTOR = 1.1
# part 4: (key, title, Histogram keyword arguments); the first is the baseline of the ratios
NATIVE_VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("classic", "classic (default buckets)", {}),
    (
        "native",
        f"native + classic buckets (`native_bucket_factor={NATIVE_FACTOR}`)",
        {"native_bucket_factor": NATIVE_FACTOR},
    ),
    (
        "native_only",
        f"native only (`buckets=(), native_bucket_factor={NATIVE_FACTOR}`)",
        {"buckets": (), "native_bucket_factor": NATIVE_FACTOR},
    ),
)


def native_histograms(registry_for: Callable[[str], Any]) -> dict[str, Any]:
    """Part 4's three histograms (label ``route``), each in the registry ``registry_for`` gives.

    Their names differ only in one digit (``nh0_seconds`` …), so the bodies' sizes compare.
    """
    import apytheus

    return {
        key: apytheus.Histogram(
            f"nh{index}_seconds",
            "bench",
            required_labels=["route"],
            registry=registry_for(key),
            **kwargs,
        )
        for index, (key, _, kwargs) in enumerate(NATIVE_VARIANTS)
    }


def native_values(series: int, count: int) -> list[float]:
    """A series' observations: log-uniform in [1 ms, 10 s], seeded by the series' index."""
    rng = random.Random(series)
    return [10 ** rng.uniform(-3.0, 1.0) for _ in range(count)]


def role_apytheus_native_worker(p: dict[str, Any]) -> dict[str, Any]:
    """A part 4 worker (Redis backend from the environment): its share of the routes."""
    import apytheus
    from apytheus.backends import get_backend

    backend: Any = get_backend()
    if type(backend).__name__ != "RedisBackend":
        raise RuntimeError(f"the environment did not select the Redis backend: {backend!r}")
    registry = apytheus.CollectorRegistry()
    histograms = list(native_histograms(lambda _key: registry).values())
    start = time.perf_counter()
    for i in _share(p["index"], p["workers"], p["native_series"], "split"):
        children = [h.labels(route=f"/route/{i}") for h in histograms]
        for value in native_values(i, p["native_observations"]):
            for child in children:
                child.observe(value)
    recorded = time.perf_counter() - start
    backend.close()  # the final flush (atexit would do the same)
    return {
        "record_s": recorded,
        "total_s": time.perf_counter() - start,
        "flush_errors": backend.flush_errors,
    }


def _check_pc_multiprocess() -> None:
    from prometheus_client import values

    if "MultiProcess" not in getattr(values.ValueClass, "__qualname__", ""):
        raise RuntimeError("prometheus_client is not in multiprocess mode in this child")


def role_pc_worker(p: dict[str, Any]) -> dict[str, Any]:
    """A prometheus_client worker in multiprocess mode (PROMETHEUS_MULTIPROC_DIR set)."""
    import prometheus_client as pc

    _check_pc_multiprocess()
    registry = pc.CollectorRegistry()
    name = p["name"]
    counter = pc.Counter(f"{name}_requests", "bench", ["k"], registry=registry)
    histogram = pc.Histogram(f"{name}_latency_seconds", "bench", ["k"], registry=registry)
    start = time.perf_counter()
    for i in _share(p["index"], p["workers"], p["counter_series"], p["mode"]):
        counter.labels(k=f"v{i}").inc()
    for i in _share(p["index"], p["workers"], p["histogram_series"], p["mode"]):
        histogram.labels(k=f"v{i}").observe((i % 100) / 40)
    elapsed = time.perf_counter() - start
    return {"record_s": elapsed, "total_s": elapsed, "flush_errors": 0}


def _calibrate(timer: timeit.Timer, target_s: float) -> int:
    """Smallest-ish N with timer.timeit(N) >= target_s (runs the op: doubles as warm-up)."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= target_s:
            return number
        if elapsed < target_s / 20:
            number *= 10
        else:
            return max(number + 1, math.ceil(number * target_s / elapsed * 1.05))


def _ref_timer() -> timeit.Timer:
    return timeit.Timer("d[k] += 1", "d = {'k': 0}; k = 'k'")


def role_pc_record(p: dict[str, Any]) -> dict[str, Any]:
    """Record cost of prometheus_client in multiprocess mode (timeit, like the parent)."""
    import prometheus_client as pc

    _check_pc_multiprocess()
    registry = pc.CollectorRegistry()
    counter = pc.Counter("rec_plain", "bench", registry=registry)
    child = pc.Counter("rec_labeled", "bench", ["k"], registry=registry).labels(k="v")
    histogram = pc.Histogram("rec_latency_seconds", "bench", registry=registry)
    timers = {
        "inc": timeit.Timer("inc()", "inc = _m.inc", globals={"_m": counter}),
        "child_inc": timeit.Timer("inc()", "inc = _m.inc", globals={"_m": child}),
        "observe": timeit.Timer("observe(0.3)", "observe = _m.observe", globals={"_m": histogram}),
        "ref": _ref_timer(),
    }
    numbers = {key: _calibrate(t, p["target_s"]) for key, t in timers.items()}
    samples: dict[str, list[float]] = {key: [] for key in timers}
    for _ in range(p["repeats"]):
        for key, t in timers.items():
            samples[key].append(t.timeit(numbers[key]) / numbers[key])
    return {"samples": samples}


PARTS = ("record", "scrape", "aggregation", "native")

ROLES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "apytheus-worker": role_apytheus_worker,
    "apytheus-native-worker": role_apytheus_native_worker,
    "pytheus-worker": role_pytheus_worker,
    "pc-worker": role_pc_worker,
    "pc-record": role_pc_record,
}


# --------------------------------------------------------------------------- results
@dataclass
class Cell:
    """Samples (seconds) of one measurement, or the error that stopped it."""

    samples: list[float] = field(default_factory=list)
    error: str | None = None

    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples and not self.error else None


def paired_ratio(a: Cell, b: Cell) -> float | None:
    """Median over rounds of a/b (same round, same machine state); else ratio of medians."""
    ma, mb = a.median(), b.median()
    if ma is None or mb is None or mb == 0:
        return None
    if len(a.samples) == len(b.samples) and all(b.samples):
        return statistics.median(x / y for x, y in zip(a.samples, b.samples, strict=True))
    return ma / mb


@dataclass
class Report:
    """Everything the run prints."""

    meta: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[bool], list[list[str]]]] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def error(self, what: str) -> str:
        text = traceback.format_exc()
        self.errors.append(f"{what}\n{text}")
        _log(f"!! {what}:\n{text}")
        return text

    def verdict(self, what: str, value: float | None, op: str, limit: float) -> str:
        """Record and return 'met' / 'NOT met' / 'n/a' for ``value op limit``."""
        if value is None:
            word = "n/a (error)"
        else:
            met = value <= limit if op == "≤" else value >= limit
            word = "met" if met else "NOT met"
        shown = "n/a" if value is None else _num(value)
        self.verdicts.append(f"{what}: {shown} (target {op} {limit:g}) -> {word}")
        return word


def timed_rounds(
    calls: dict[Any, Callable[[], Any]],
    cells: dict[Any, Cell],
    order: list[Any],
    repeats: int,
    rep: Report,
    what: str,
) -> None:
    """Time each call once per round, rounds in a rotating order, after an untimed gc.collect()."""
    for rnd in range(repeats):
        _log(f"{what} round {rnd + 1}/{repeats}")
        shift = rnd % max(1, len(order))
        for key in order[shift:] + order[:shift]:
            cell = cells[key]
            if cell.error:
                continue
            gc.collect()
            try:
                start = time.perf_counter()
                calls[key]()
                cell.samples.append(time.perf_counter() - start)
            except Exception:
                cell.error = rep.error(f"{what} {key}")


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _ns(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    if cell.error:
        return "error"
    m = cell.median()
    return "-" if m is None else f"{m * 1e9:,.1f} ns"


def _ms(cell: Cell | None) -> str:
    if cell is None:
        return "not run"
    if cell.error:
        return "error"
    m = cell.median()
    return "-" if m is None else f"{m * 1e3:,.1f} ms"


def _x(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}×"


@contextmanager
def quiet_apytheus() -> Iterator[None]:
    """Silence apytheus' warning that a backend switch moved existing series (expected here)."""
    logger = logging.getLogger("apytheus")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def switch_backend(cls: Any, config: dict[str, Any] | None = None) -> Any:
    """``apytheus.backends.load_backend`` without the warning about moved series."""
    from apytheus.backends import load_backend

    with quiet_apytheus():
        return load_backend(cls, config)


# --------------------------------------------------------------------------- part 1: record
def run_record(sizes: Sizes, apy_server: RedisServer, pyt_server: RedisServer, rep: Report) -> None:
    from pytheus.backends.base import load_backend as p_load
    from pytheus.backends.redis import MultiProcessRedisBackend
    from pytheus.metrics import Counter as PCounter
    from pytheus.metrics import Histogram as PHistogram
    from pytheus.registry import CollectorRegistry as PRegistry

    import apytheus
    from apytheus.backends import InProcessBackend
    from apytheus.backends.redis import RedisBackend

    variants = ("apy_mem", "apy_redis", "pytheus")
    cells: dict[tuple[str, str], Cell] = {(op, v): Cell() for op, _ in RECORD_OPS for v in variants}
    redis_config = {"url": apy_server.url, "key_prefix": "bench_rec", "flush_interval": 1.0}
    active: list[Any] = []  # the open RedisBackend, if any

    def activate(variant: str) -> None:
        if variant == "apy_mem":
            switch_backend(InProcessBackend)
            while active:
                active.pop().close()
        elif variant == "apy_redis" and not active:
            backend = switch_backend(RedisBackend, redis_config)
            backend.flush_sync()  # connect and load the script outside the timed loops
            active.append(backend)

    try:
        switch_backend(InProcessBackend)
        registry = apytheus.CollectorRegistry()
        counter = apytheus.Counter("rec_plain", "bench", registry=registry)
        labeled = apytheus.Counter("rec_labeled", "bench", required_labels=["k"], registry=registry)
        histogram = apytheus.Histogram("rec_latency_seconds", "bench", registry=registry)
        apy_timers = {
            "inc": timeit.Timer("inc()", "inc = _m.inc", globals={"_m": counter}),
            "child_inc": timeit.Timer(
                "inc()", "inc = _m.inc", globals={"_m": labeled.labels(k="v")}
            ),
            "observe": timeit.Timer(
                "observe(0.3)", "observe = _m.observe", globals={"_m": histogram}
            ),
            "ref": _ref_timer(),
        }
        p_load(
            backend_class=MultiProcessRedisBackend,
            backend_config={"host": "127.0.0.1", "port": pyt_server.port},
        )
        p_counter = PCounter("rec_plain", "bench", registry=PRegistry())
        p_child = PCounter("rec_labeled", "bench", required_labels=["k"], registry=PRegistry())
        p_histogram = PHistogram("rec_latency_seconds", "bench", registry=PRegistry())
        pyt_timers = {
            "inc": timeit.Timer("inc()", "inc = _m.inc", globals={"_m": p_counter}),
            "child_inc": timeit.Timer(
                "inc()", "inc = _m.inc", globals={"_m": p_child.labels(k="v")}
            ),
            "observe": timeit.Timer(
                "observe(0.3)", "observe = _m.observe", globals={"_m": p_histogram}
            ),
            "ref": _ref_timer(),
        }
        # one N per operation for both apytheus variants: the very same loop, only the backend
        # differs (calibrated with the in-process backend)
        numbers: dict[tuple[str, str], int] = {}
        for op, _ in RECORD_OPS:
            _log(f"calibrating {op:<9} apytheus / pytheus")
            numbers[op, "apy"] = _calibrate(apy_timers[op], sizes.target_s)
            numbers[op, "pytheus"] = _calibrate(pyt_timers[op], sizes.target_s)
        activate("apy_redis")  # warm the Redis variant once
        for op, _ in RECORD_OPS:
            apy_timers[op].timeit(max(1, numbers[op, "apy"] // 10))
        for rnd in range(sizes.repeats):
            _log(f"record round {rnd + 1}/{sizes.repeats}")
            order = variants[rnd % 3 :] + variants[: rnd % 3]
            for variant in order:
                activate(variant)
                timers = pyt_timers if variant == "pytheus" else apy_timers
                for op, _ in RECORD_OPS:
                    n = numbers[op, "pytheus" if variant == "pytheus" else "apy"]
                    cell = cells[op, variant]
                    if cell.error:
                        continue
                    try:
                        cell.samples.append(timers[op].timeit(n) / n)
                    except Exception:
                        cell.error = rep.error(f"record {op} {variant}")
    except Exception:
        text = rep.error("record benchmark (apytheus / pytheus)")
        for cell in cells.values():
            cell.error = cell.error or text
    finally:
        switch_backend(InProcessBackend)
        while active:
            active.pop().close()

    _log("record: prometheus_client multiprocess (child process)")
    pc_cells = {op: Cell() for op, _ in RECORD_OPS}
    with tempfile.TemporaryDirectory(prefix="bench-pc-record-") as pc_dir:
        try:
            result = run_child(
                "pc-record",
                {"repeats": sizes.repeats, "target_s": sizes.target_s},
                {"PROMETHEUS_MULTIPROC_DIR": pc_dir},
                timeout=300,
            )
            for op, _ in RECORD_OPS:
                pc_cells[op].samples = list(result["samples"][op])
        except Exception:
            text = rep.error("record benchmark (prometheus_client multiprocess child)")
            for cell in pc_cells.values():
                cell.error = text

    header = [
        "operation",
        "apytheus in-process",
        "apytheus Redis",
        "pytheus Redis",
        "p_c multiprocess",
        "apy Redis / apy in-process (≤ 1.2)",
        "pytheus / apy Redis (≥ 500)",
        "apy Redis / p_c mp",
        "target",
    ]
    right = [False, True, True, True, True, True, True, True, False]
    body: list[list[str]] = []
    for op, title in RECORD_OPS:
        mem, red, pyt, pcm = (
            cells[op, "apy_mem"],
            cells[op, "apy_redis"],
            cells[op, "pytheus"],
            pc_cells[op],
        )
        r_mem = paired_ratio(red, mem)
        r_pyt = paired_ratio(pyt, red)
        pm, rm = pcm.median(), red.median()
        r_pc = rm / pm if pm and rm is not None else None
        if op == "ref":
            verdict = "reference"
        else:
            clean = title.replace("`", "")
            v1 = rep.verdict(f"record {clean}: apytheus Redis / in-process", r_mem, "≤", 1.2)
            v2 = rep.verdict(f"record {clean}: pytheus Redis / apytheus Redis", r_pyt, "≥", 500)
            verdict = f"{v1} (≤ 1.2), {v2} (≥ 500)"
        body.append(
            [
                title,
                _ns(mem),
                _ns(red),
                _ns(pyt),
                _ns(pcm),
                _x(r_mem),
                _x(r_pyt, 0),
                _x(r_pc),
                verdict,
            ]
        )
    rep.tables.append(("1. Record cost (median ns per call)", header, right, body))
    rep.notes.append(
        "record: apytheus in-process and Redis time the same metric objects with the same N; "
        "the backend is switched before each block (the Redis backend's flusher thread runs, "
        "flush_interval 1 s). Ratios to the in-process and pytheus columns are paired per "
        "round; the p_c multiprocess column comes from a child process, so its ratio is a "
        "ratio of medians."
    )


# --------------------------------------------------------------------------- part 2: scrape
def _sample_stats(text: str, counter: str, histogram: str) -> tuple[int, float, float]:
    """(sample lines, sum of the counter's values, sum of the histogram's _count values)."""
    lines = 0
    counter_total = 0.0
    histogram_count = 0.0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        lines += 1
        if line.startswith(counter + "{"):
            counter_total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(histogram + "_count{"):
            histogram_count += float(line.rsplit(" ", 1)[1])
    return lines, counter_total, histogram_count


LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def parse_samples(text: str) -> dict[SampleKey, float]:
    """Every sample of a text exposition: (name, sorted labels) -> value (``le`` normalized)."""
    out: dict[SampleKey, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, rest = head.partition("{")
        labels = tuple(
            sorted((k, repr(float(v)) if k == "le" else v) for k, v in LABEL_RE.findall(rest))
        )
        out[name, labels] = float(value)
    return out


def compare_samples(
    mine: dict[SampleKey, float], other: dict[SampleKey, float], buckets: bool
) -> tuple[int, int]:
    """(samples of ``mine`` that ``other`` has with the same value, samples compared)."""
    keys = [k for k in mine if buckets or not k[0].endswith("_bucket")]
    same = sum(1 for k in keys if k in other and math.isclose(mine[k], other[k], rel_tol=1e-9))
    return same, len(keys)


def _worker_params(sizes: Sizes, name: str, mode: str, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "index": w,
            "workers": WORKERS,
            "mode": mode,
            "name": name,
            "counter_series": sizes.counter_series,
            "histogram_series": sizes.histogram_series,
            **extra,
        }
        for w in range(WORKERS)
    ]


def run_scrape(sizes: Sizes, apy_server: RedisServer, pyt_server: RedisServer, rep: Report) -> None:
    import prometheus_client as pc
    from prometheus_client.multiprocess import MultiProcessCollector
    from pytheus.backends.base import load_backend as p_load
    from pytheus.backends.redis import MultiProcessRedisBackend
    from pytheus.exposition import generate_metrics as p_generate
    from pytheus.metrics import Counter as PCounter
    from pytheus.metrics import Histogram as PHistogram
    from pytheus.registry import CollectorRegistry as PRegistry

    import apytheus
    from apytheus.backends import InProcessBackend
    from apytheus.backends.redis import RedisBackend

    timeout = 600.0
    apy_env = {
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(
            {"url": apy_server.url, "key_prefix": "bench", "flush_interval": 1.0}
        ),
    }
    expected = {
        "split": (float(sizes.counter_series), float(sizes.histogram_series)),
        "all": (float(sizes.counter_series * WORKERS), float(sizes.histogram_series * WORKERS)),
    }
    names = {"split": "bench", "all": "bench_all"}
    calls: dict[tuple[str, str], Callable[[], str]] = {}
    write_s: dict[tuple[str, str], float] = {}  # wall time of the 8 worker processes
    worker_s: dict[tuple[str, str], float] = {}  # slowest worker: writes + final flush
    tmp = tempfile.TemporaryDirectory(prefix="bench-pc-scrape-")
    pc_dirs = {mode: Path(tmp.name) / mode for mode in names}
    backend: Any = None
    try:
        for d in pc_dirs.values():
            d.mkdir()
        apy_server.client().flushall()
        pyt_server.client().flushall()
        jobs: list[tuple[str, str, str, dict[str, str], dict[str, Any]]] = [
            ("apytheus", "split", "apytheus-worker", apy_env, {}),
            ("apytheus", "all", "apytheus-worker", apy_env, {}),
            ("pytheus", "split", "pytheus-worker", {}, {"port": pyt_server.port}),
            ("p_c", "split", "pc-worker", {"PROMETHEUS_MULTIPROC_DIR": str(pc_dirs["split"])}, {}),
            ("p_c", "all", "pc-worker", {"PROMETHEUS_MULTIPROC_DIR": str(pc_dirs["all"])}, {}),
        ]
        for lib, mode, role, env, extra in jobs:
            _log(f"scrape: {WORKERS} {lib} workers write ({mode})")
            try:
                results, wall = run_children(
                    role, _worker_params(sizes, names[mode], mode, **extra), env, timeout
                )
                errors = sum(r["flush_errors"] for r in results)
                if errors:
                    rep.notes.append(f"scrape: {lib} {mode} workers had {errors} flush errors")
                write_s[lib, mode] = wall
                worker_s[lib, mode] = max(r["total_s"] for r in results)
            except Exception:
                rep.error(f"scrape: {lib} {mode} workers")

        # apytheus: the same metrics registered in this process; its own buffer stays empty
        gc.collect()
        backend = switch_backend(RedisBackend, {"url": apy_server.url, "key_prefix": "bench"})
        backend.flush_sync()
        for mode, name in names.items():
            registry = apytheus.CollectorRegistry()
            apytheus.Counter(f"{name}_requests", "bench", required_labels=["k"], registry=registry)
            apytheus.Histogram(
                f"{name}_latency_seconds", "bench", required_labels=["k"], registry=registry
            )
            calls["apytheus", mode] = _bind(apytheus.generate_metrics, registry)
        # pytheus: same metrics, same Redis the workers wrote to
        p_load(
            backend_class=MultiProcessRedisBackend,
            backend_config={"host": "127.0.0.1", "port": pyt_server.port},
        )
        p_registry = PRegistry()
        PCounter("bench_requests_total", "bench", required_labels=["k"], registry=p_registry)
        PHistogram("bench_latency_seconds", "bench", required_labels=["k"], registry=p_registry)
        calls["pytheus", "split"] = _bind(p_generate, p_registry)
        # prometheus_client: one registry + MultiProcessCollector per directory, created once
        for mode, d in pc_dirs.items():
            pc_registry = pc.CollectorRegistry()
            MultiProcessCollector(pc_registry, path=str(d))  # type: ignore[no-untyped-call]
            calls["p_c", mode] = _bind_pc(pc.generate_latest, pc_registry)
    except Exception:
        rep.error("scrape benchmark setup")

    cells: dict[tuple[str, str], Cell] = {}
    outputs: dict[tuple[str, str], dict[SampleKey, float]] = {}
    try:
        for key, call in list(calls.items()):
            lib, mode = key
            if (lib, mode) not in write_s:
                cells[key] = Cell(error="its workers failed")
                continue
            try:
                _log(f"scrape warm-up {lib} {mode}")
                counter = f"{names[mode]}_requests_total"
                with count_sends() as sends:
                    text = call()
                outputs[key] = parse_samples(text)
                lines, total, count = _sample_stats(text, counter, f"{names[mode]}_latency_seconds")
                if lib == "apytheus":
                    rep.notes.append(
                        f"scrape {mode} apytheus: {sends[0]} round trips to Redis per scrape"
                    )
                want_total, want_count = expected[mode]
                ok = "ok" if (total, count) == (want_total, want_count) else "MISMATCH"
                rep.notes.append(
                    f"scrape {mode} {lib}: {lines:,} sample lines, counter total {total:,.0f}, "
                    f"histogram count {count:,.0f} (expected {want_total:,.0f} / "
                    f"{want_count:,.0f}: {ok}); write phase: slowest worker "
                    f"{worker_s[key]:.2f} s (writes and final flush), "
                    f"{write_s[key]:.1f} s wall for the {WORKERS} processes with start-up"
                )
                cells[key] = Cell()
            except Exception:
                cells[key] = Cell(error=rep.error(f"scrape warm-up {lib} {mode}"))
        for mode in names:
            mine = outputs.get(("apytheus", mode))
            for lib, buckets in (("pytheus", True), ("p_c", False)):
                other = outputs.get((lib, mode))
                if mine is None or other is None:
                    continue
                same, total = compare_samples(mine, other, buckets)
                what = "samples" if buckets else "counter, _count and _sum samples"
                rep.notes.append(
                    f"scrape {mode}: apytheus and {lib} agree on {same:,} of apytheus' "
                    f"{total:,} {what} ({'ok' if same == total else 'MISMATCH'})"
                )
        outputs.clear()
        order = [k for k in calls if k in cells and not cells[k].error]
        timed_rounds(calls, cells, order, sizes.repeats, rep, "scrape")
    finally:
        calls.clear()
        if backend is not None:
            switch_backend(InProcessBackend)
            backend.close()
        tmp.cleanup()

    header = [
        "scrape",
        "apytheus Redis",
        "pytheus Redis",
        "p_c multiprocess",
        "apytheus / pytheus (≤ 1)",
        "apytheus / p_c (≤ 0.3)",
        "target",
    ]
    right = [False, True, True, True, True, True, False]
    body: list[list[str]] = []
    for mode in names:
        apy, pyt, pcm = (cells.get((lib, mode)) for lib in ("apytheus", "pytheus", "p_c"))
        r_pyt = paired_ratio(apy, pyt) if apy and pyt else None
        r_pc = paired_ratio(apy, pcm) if apy and pcm else None
        if mode == "split":
            title = (
                f"split: {sizes.counter_series:,} counter + {sizes.histogram_series:,} "
                f"histogram series, {WORKERS} workers, each series written by one worker"
            )
            v1 = rep.verdict("scrape (split): apytheus / pytheus", r_pyt, "≤", 1.0)
            v2 = rep.verdict("scrape (split): apytheus / p_c multiprocess", r_pc, "≤", 0.3)
            verdict = f"{v1} vs pytheus, {v2} vs p_c"
        else:
            title = f"all: the same series, each of the {WORKERS} workers writes all of them"
            verdict = "no target (pytheus not run: 8× its write time)"
        body.append(
            [title, _ms(apy), _ms(pyt), _ms(pcm), _x(r_pyt), _x(r_pc), verdict],
        )
    rep.tables.append(("2. Scrape (median ms per scrape)", header, right, body))
    rep.notes.append(
        "scrape: apytheus = generate_metrics(registry) with the Redis backend (flushes this "
        "process' empty buffer, then one pipelined read); pytheus = generate_metrics(registry) "
        "with MultiProcessRedisBackend; p_c = generate_latest(registry) with a "
        "MultiProcessCollector created once. Each timed call follows an untimed gc.collect(); "
        "rounds rotate the order; ratios are paired per round. Default buckets: 11 bounds "
        "(apytheus, pytheus), 14 bounds (prometheus_client)."
    )


def _bind(fn: Callable[[Any], str], registry: Any) -> Callable[[], str]:
    def call() -> str:
        return fn(registry)

    return call


def _bind_pc(fn: Callable[[Any], bytes], registry: Any) -> Callable[[], str]:
    def call() -> str:
        return fn(registry).decode()

    return call


# --------------------------------------------------------------------------- part 3: buffer
@contextmanager
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


def _commandstats(client: Any) -> dict[str, tuple[int, int]]:
    """(calls, µs spent) per command, as Redis counts them (script calls included)."""
    return {k: (int(v["calls"]), int(v["usec"])) for k, v in client.info("commandstats").items()}


def run_aggregation(sizes: Sizes, server: RedisServer, rep: Report) -> None:
    import tracemalloc

    import apytheus
    from apytheus.backends import InProcessBackend
    from apytheus.backends.redis import RedisBackend

    n_series = sizes.agg_series
    stats_client = server.client()
    results: dict[int, dict[str, Any]] = {}
    idle: dict[str, Any] = {}
    backend: Any = None
    try:
        gc.collect()
        # flush_interval 3600 s: the flusher thread never fires; the only flushes are ours
        backend = switch_backend(
            RedisBackend,
            {"url": server.url, "key_prefix": "bench_agg", "flush_interval": 3600.0},
        )
        registry = apytheus.CollectorRegistry()
        counter = apytheus.Counter(
            "agg_requests", "bench", required_labels=["k"], registry=registry
        )
        incs = [counter.labels(k=f"v{i}").inc for i in range(n_series)]
        values_key = backend._store.keys(counter._family.spec)[1]  # the store's own layout
        backend.flush_sync()  # connect, load the script, create the series in Redis
        writes = [0, 0]  # store.write calls: all, with a batch
        sent: list[Any] = []  # the batches written, as flush_sync took them itself
        original_write = backend._store.write

        def counted_write(batch: Any, *args: Any, **kwargs: Any) -> Any:
            writes[0] += 1
            writes[1] += batch is not None
            if batch is not None:
                sent.append(batch)
            return original_write(batch, *args, **kwargs)

        backend._store.write = counted_write

        # an idle flush: nothing changed, every tracked series is still visited
        idle_times = []
        with count_sends() as sends:
            for _ in range(5):
                start = time.perf_counter()
                backend.flush_sync()
                idle_times.append(time.perf_counter() - start)
        idle = {"ms": statistics.median(idle_times) * 1e3, "round_trips": sends[0] / 5}

        for total in sizes.agg_increments:
            _log(f"aggregation: {total:,} increments over {n_series:,} series")
            per_series = total // n_series
            res: dict[str, Any] = {}
            # pass 1: counts and times (no tracemalloc)
            before = _commandstats(stats_client)
            redis_before = sum(float(v) for v in stats_client.hvals(values_key))
            seq_before = backend._buffer.seq
            writes[:] = [0, 0]
            gc.collect()
            start = time.perf_counter()
            for _ in range(per_series):
                for inc in incs:
                    inc()
            res["record_s"] = time.perf_counter() - start
            sent.clear()
            with count_sends() as sends:
                start = time.perf_counter()
                res["flush_ok"] = backend.flush_sync()
                res["flush_ms"] = (time.perf_counter() - start) * 1e3
            batch = sent[0] if sent else None
            res["fields"] = batch.fields if batch is not None else 0
            res["evalsha_batch"] = len(batch.ops) if batch is not None else 0
            res["round_trips"] = sends[0]
            res["flushes"] = writes[1]
            res["writes"] = writes[0]
            res["seq_delta"] = backend._buffer.seq - seq_before
            after = _commandstats(stats_client)
            for cmd in ("evalsha", "hget", "hset", "zadd", "hkeys", "hdel"):
                key = f"cmdstat_{cmd}"
                calls_after, usec_after = after.get(key, (0, 0))
                calls_before, usec_before = before.get(key, (0, 0))
                res[cmd] = calls_after - calls_before
                res[cmd + "_usec"] = usec_after - usec_before
            res["redis_delta"] = (
                sum(float(v) for v in stats_client.hvals(values_key)) - redis_before
            )
            res["expected_delta"] = float(per_series * n_series)
            # pass 2: memory (tracemalloc slows the loop down, so it is not timed)
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                for _ in range(per_series):
                    for inc in incs:
                        inc()
                recorded = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                backend.flush_sync()
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            res["record_growth"] = recorded - base
            res["flush_peak"] = peak - recorded
            results[total] = res
    except Exception:
        rep.error("buffer aggregation benchmark")
    finally:
        if backend is not None:
            switch_backend(InProcessBackend)
            backend.close()
        stats_client.close()

    totals = list(sizes.agg_increments)
    header = ["quantity", *(f"{t:,} increments" for t in totals), "target", "verdict"]
    right = [False, *([True] * len(totals)), False, False]

    def row(label: str, fmt: Callable[[dict[str, Any]], str], target: str, verdict: str) -> None:
        cells = [fmt(results[t]) if t in results else "error" for t in totals]
        body.append([label, *cells, target, verdict])

    body: list[list[str]] = []
    big = results.get(max(totals)) if totals else None
    one_flush = all(results.get(t, {}).get("flushes") == 1 for t in totals) and bool(results)
    rep.verdicts.append(
        "aggregation: exactly one flush per interval -> "
        + ("met" if one_flush else "NOT met" if results else "n/a (error)")
    )
    row(
        "flushes (store writes carrying a batch; buffer seq +)",
        lambda r: f"{r['flushes']} (seq +{r['seq_delta']})",
        "1",
        "met" if one_flush else "NOT met",
    )
    fields_word = rep.verdict(
        f"aggregation: field updates in the batch ({max(totals):,} increments)",
        float(big["fields"]) if big else None,
        "≤",
        float(n_series),
    )
    row(
        "field updates in the batch (`batch.fields`)",
        lambda r: f"{r['fields']:,}",
        "≤ 10,000",
        fields_word,
    )
    row(
        "EVALSHA calls (Redis `INFO commandstats` delta: flush script, mark script)",
        lambda r: f"{r['evalsha']:,}",
        "",
        "",
    )
    row(
        "HGET calls (commandstats delta, run by the scripts: old totals, batch number, mark)",
        lambda r: f"{r['hget']:,}",
        "",
        "",
    )
    row(
        "HSET calls (commandstats delta, run by the scripts: new totals, batch number, mark)",
        lambda r: f"{r['hset']:,}",
        "",
        "",
    )
    row("ZADD calls (heartbeat, run by the mark script)", lambda r: f"{r['zadd']:,}", "", "")
    row(
        "time Redis spent in the scripts (commandstats µs of EVALSHA)",
        lambda r: f"{r['evalsha_usec'] / 1e3:,.1f} ms",
        "",
        "",
    )
    trips = {results[t]["round_trips"] for t in totals if t in results}
    constant = len(trips) == 1 and len(results) == len(totals)
    rep.verdicts.append(
        f"aggregation: round trips per flush {sorted(trips)} for {totals} increments, "
        f"constant -> {'met' if constant else 'NOT met'}"
    )
    row(
        "round trips of the flush (redis-py sends)",
        lambda r: f"{r['round_trips']}",
        "constant",
        "met" if constant else "NOT met",
    )
    row("recording time (no tracemalloc)", lambda r: f"{r['record_s'] * 1e3:,.0f} ms", "", "")
    row(
        "recording cost per increment (loop included)",
        lambda r: f"{r['record_s'] / r['expected_delta'] * 1e9:,.0f} ns",
        "",
        "",
    )
    row("flush time (`flush_sync()`)", lambda r: f"{r['flush_ms']:,.1f} ms", "", "")
    row(
        "memory allocated and kept by the recording (tracemalloc)",
        lambda r: f"{r['record_growth']:,} B",
        "≈ 0, same for both",
        "",
    )
    row(
        "peak extra memory during the flush (tracemalloc)",
        lambda r: f"{r['flush_peak'] / 1e6:,.2f} MB",
        "same for both",
        "",
    )
    row(
        "Redis totals increased by (sum of the hash)",
        lambda r: f"{r['redis_delta']:,.0f} / {r['expected_delta']:,.0f}",
        "= increments",
        "",
    )
    rep.tables.append(
        (f"3. Buffer aggregation ({n_series:,} series, one flush)", header, right, body)
    )
    if big:
        mem = [results[t]["flush_peak"] for t in totals if t in results]
        grow = [results[t]["record_growth"] for t in totals if t in results]
        rep.verdicts.append(
            "aggregation: memory bounded by series, not operations: flush peak "
            + " vs ".join(f"{m / 1e6:.2f} MB" for m in mem)
            + ", recording growth "
            + " vs ".join(f"{g:,} B" for g in grow)
            + f" for {' vs '.join(f'{t:,}' for t in totals)} increments"
        )
    if idle:
        rep.notes.append(
            f"aggregation: an idle flush (nothing changed) with {n_series:,} tracked series "
            f"takes {idle['ms']:.1f} ms and {idle['round_trips']:g} round trip(s)"
        )
    if results:
        removals = ", ".join(
            f"{results[t]['hkeys']:,} HKEYS / {results[t]['hdel']:,} HDEL" for t in results
        )
        rep.notes.append(
            "aggregation: the batches queue no removals, so the flush script deletes nothing "
            f"(commandstats delta: {removals})"
        )
    rep.notes.append(
        "aggregation: round trips = calls of redis-py's Connection.send_packed_command during "
        "flush_sync() (a pipeline is one call); flushes = RedisStore.write calls that carry a "
        "batch; field updates = Batch.fields of the batch flush_sync() took and wrote; "
        "commandstats count the commands the flush and mark scripts run (EVALSHA µs include them)."
    )


# --------------------------------------------------------------------------- part 4: native
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _pb_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of one protobuf message: an int for varints, else the bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        wire = key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos : pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"wire type {wire} at byte {pos}")
        yield key >> 3, value


def protobuf_histograms(body: bytes) -> list[tuple[float, int, int]]:
    """Per histogram ``Metric`` of a delimited protobuf body: (count, classic buckets sent,
    populated native buckets); decoded by hand, as a cross-check of what the scrape sent."""
    out: list[tuple[float, int, int]] = []
    pos = 0
    while pos < len(body):
        size, pos = _varint(body, pos)
        family, pos = body[pos : pos + size], pos + size
        for number, metric in _pb_fields(family):
            if number != 4 or not isinstance(metric, bytes):  # MetricFamily.metric
                continue
            for kind, histogram in _pb_fields(metric):
                if kind != 7 or not isinstance(histogram, bytes):  # Metric.histogram
                    continue
                count, classic, native = 0.0, 0, 0
                running = {10: 0, 13: 0}  # negative / positive deltas
                for field_no, value in _pb_fields(histogram):
                    if field_no == 1 and isinstance(value, int):  # sample_count
                        count = float(value)
                    elif field_no == 4 and isinstance(value, bytes):  # sample_count_float
                        count = struct.unpack("<d", value)[0]
                    elif field_no == 3:  # a classic bucket
                        classic += 1
                    elif field_no in running and isinstance(value, int):  # zigzag deltas
                        running[field_no] += (value >> 1) ^ -(value & 1)
                        native += running[field_no] != 0
                out.append((count, classic, native))
    return out


def run_native(sizes: Sizes, server: RedisServer, rep: Report) -> None:
    import apytheus
    from apytheus.backends import InProcessBackend
    from apytheus.backends.redis import RedisBackend
    from apytheus.exposition import PROTOBUF_CONTENT_TYPE, render

    n_series, n_obs = sizes.native_series, sizes.native_observations
    prefix = "bench_native"
    env = {
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(
            {"url": server.url, "key_prefix": prefix, "flush_interval": 1.0}
        ),
    }
    formats = {"protobuf": PROTOBUF_CONTENT_TYPE, "text": "text/plain; version=0.0.4"}
    variants = [key for key, _, _ in NATIVE_VARIANTS]
    keys = [(v, f) for f in formats for v in variants]
    cells: dict[tuple[str, str], Cell] = {key: Cell() for key in keys}
    body_bytes: dict[tuple[str, str], int] = {}
    hlen: dict[str, int] = {}
    redis_bytes: dict[str, int] = {}
    native_per_series: dict[str, list[int]] = {}
    calls: dict[tuple[str, str], Callable[[], bytes]] = {}
    client = server.client()
    backend: Any = None
    try:
        client.flushall()
        _log(f"native: {WORKERS} apytheus workers write {n_series:,} series × 3 histograms")
        params = [
            {
                "index": w,
                "workers": WORKERS,
                "native_series": n_series,
                "native_observations": n_obs,
            }
            for w in range(WORKERS)
        ]
        results, wall = run_children("apytheus-native-worker", params, env, 600.0)
        errors = sum(r["flush_errors"] for r in results)
        rep.notes.append(
            f"native: write phase: slowest worker {max(r['total_s'] for r in results):.2f} s "
            f"(writes of the three histograms and final flush), {wall:.1f} s wall for the "
            f"{WORKERS} processes with start-up; {errors} flush errors"
        )

        # the same metrics registered in this process, one registry each; nothing recorded
        gc.collect()
        backend = switch_backend(RedisBackend, {"url": server.url, "key_prefix": prefix})
        backend.flush_sync()
        registries = {key: apytheus.CollectorRegistry() for key in variants}
        histograms = native_histograms(registries.__getitem__)
        for variant, histogram in histograms.items():
            values_key = backend._store.keys(histogram._family.spec)[1]  # the store's layout
            hlen[variant] = int(client.hlen(values_key))
            redis_bytes[variant] = int(client.memory_usage(values_key, samples=0) or 0)
        names = {v: h._family.spec.name for v, h in histograms.items()}
        for variant, fmt in keys:
            calls[variant, fmt] = _bind_render(render, registries[variant], formats[fmt])
    except Exception:
        text = rep.error("native: writes and setup")
        for cell in cells.values():
            cell.error = text

    expected_count = float(n_series * n_obs)
    try:
        for key in keys:
            variant, fmt = key
            if cells[key].error:
                continue
            try:
                _log(f"native: scrape warm-up {variant} {fmt}")
                with count_sends() as sends:
                    payload = calls[key]()
                body_bytes[key] = len(payload)
                if fmt == "protobuf":
                    found = protobuf_histograms(payload)
                    count = sum(c for c, _, _ in found)
                    classic = sorted({b for _, b, _ in found})
                    native_per_series[variant] = [n for _, _, n in found]
                    native = sum(native_per_series[variant])
                    ok = len(found) == n_series and count == expected_count
                    rep.notes.append(
                        f"native {variant} protobuf: {len(found):,} histograms, count "
                        f"{count:,.0f} (expected {n_series:,} / {expected_count:,.0f}: "
                        f"{'ok' if ok else 'MISMATCH'}), classic buckets sent per series "
                        f"{classic}, {native:,} populated native buckets; "
                        f"{sends[0]} round trips to Redis per scrape"
                    )
                else:
                    head = f"{names[variant]}_count{{"
                    count = sum(
                        float(line.rsplit(" ", 1)[1])
                        for line in payload.decode().splitlines()
                        if line.startswith(head)
                    )
                    ok = count == expected_count
                    rep.notes.append(
                        f"native {variant} text: histogram count {count:,.0f} (expected "
                        f"{expected_count:,.0f}: {'ok' if ok else 'MISMATCH'}); "
                        f"{sends[0]} round trips to Redis per scrape"
                    )
            except Exception:
                cells[key].error = rep.error(f"native: scrape warm-up {variant} {fmt}")
        order = [key for key in keys if not cells[key].error]
        timed_rounds(calls, cells, order, sizes.repeats, rep, "native: scrape")
    finally:
        calls.clear()
        if backend is not None:
            switch_backend(InProcessBackend)
            backend.close()
        client.close()

    header = [
        "variant",
        "protobuf scrape",
        "/ classic protobuf",
        "text 0.0.4 scrape",
        "/ classic text",
        "protobuf body",
        "text body",
        "Redis fields (HLEN of the values hash)",
        "Redis memory of the values hash",
        "native buckets per series (min / median / max)",
    ]
    right = [False, *([True] * 9)]
    body: list[list[str]] = []
    base = variants[0]

    def size(n: int | None) -> str:
        return "-" if n is None else f"{n / 1e3:,.1f} kB"

    for variant, title, _ in NATIVE_VARIANTS:
        per = sorted(native_per_series.get(variant, []))
        spread = f"{per[0]} / {statistics.median(per):g} / {per[-1]}" if per and per[-1] else "-"
        body.append(
            [
                title,
                _ms(cells[variant, "protobuf"]),
                _x(paired_ratio(cells[variant, "protobuf"], cells[base, "protobuf"])),
                _ms(cells[variant, "text"]),
                _x(paired_ratio(cells[variant, "text"], cells[base, "text"])),
                size(body_bytes.get((variant, "protobuf"))),
                size(body_bytes.get((variant, "text"))),
                f"{hlen[variant]:,}" if variant in hlen else "-",
                size(redis_bytes.get(variant)),
                spread,
            ]
        )
    rep.tables.append(
        (
            f"4. Native histogram scrape ({n_series:,} series, {n_obs} observations each; "
            "median ms per scrape)",
            header,
            right,
            body,
        )
    )
    native_pb = paired_ratio(cells["native", "protobuf"], cells[base, "protobuf"])
    only_pb = paired_ratio(cells["native_only", "protobuf"], cells[base, "protobuf"])
    pb_text = paired_ratio(cells[base, "protobuf"], cells[base, "text"])
    rep.notes.append(
        f"native: scrape native / classic in protobuf: {_x(native_pb)} with the classic "
        f"buckets kept, {_x(only_pb)} native only; classic protobuf / classic text 0.0.4: "
        f"{_x(pb_text)}"
    )
    rep.notes.append(
        f"native: {WORKERS} apytheus worker processes write {n_series:,} series (label route, "
        f"worker w takes the series i with i % {WORKERS} == w) of each of the three histograms, "
        f"the same {n_obs} observations per series in each (10 ** uniform(-3, 1), seeded by "
        "the series), then close their backend (the final flush). This process registers the "
        "same histograms, one registry each, records nothing, and times "
        "apytheus.exposition.render(registry, accept) with the protobuf and the text 0.0.4 "
        "Accept (its own empty flush, one pipelined read, the merge and the encoding); an "
        "untimed warm-up first (it parses the labels once), then rounds in a rotating order, "
        "each call after an untimed gc.collect(); ratios are paired per round. Redis memory = "
        "MEMORY USAGE … SAMPLES 0 of the values hash; native buckets per series are decoded "
        "from the protobuf body. The histograms are named nh0_seconds (classic), nh1_seconds "
        "(native + classic) and nh2_seconds (native only): the bodies' sizes compare."
    )


def _bind_render(
    fn: Callable[[Any, str], tuple[bytes, str]], registry: Any, accept: str
) -> Callable[[], bytes]:
    def call() -> bytes:
        return fn(registry, accept)[0]

    return call


# --------------------------------------------------------------------------- report
def render_text(header: list[str], right: list[bool], body: list[list[str]]) -> str:
    plain = [[c.replace("`", "") for c in cells] for cells in [header, *body]]
    widths = [max(len(r[i]) for r in plain) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    return "\n".join(
        [line(plain[0]), "  ".join("-" * w for w in widths)] + [line(c) for c in plain[1:]]
    )


def render_markdown(header: list[str], right: list[bool], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    lines.extend(
        "| " + " | ".join(c.strip().replace("|", "\\|") for c in cells) + " |" for cells in body
    )
    return "\n".join(lines)


def source_digest(package: str) -> str:
    """A short sha256 of a package's .py files: identifies uncommitted source trees."""
    from importlib.util import find_spec

    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return "unknown"
    root = Path(next(iter(spec.submodule_search_locations)))
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return f"{root} sha256:{digest.hexdigest()[:12]}"


def versions(
    dists: Sequence[str] = ("apytheus", "pytheus", "prometheus_client", "redis", "hiredis"),
) -> str:
    """The installed version of each distribution, as one line."""
    from importlib.metadata import PackageNotFoundError, version

    def one(dist: str) -> str:
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            return f"{dist} (not installed)"

    return ", ".join(one(d) for d in dists)


def print_report(rep: Report, markdown: bool) -> None:
    if markdown:
        print("\n".join(f"- {m}" for m in rep.meta))
        for title, header, right, body in rep.tables:
            print(f"\n### {title}\n")
            print(render_markdown(header, right, body))
        if rep.verdicts:  # none when only part 4 ran
            print("\nTargets:\n")
            print("\n".join(f"- {v}" for v in rep.verdicts))
        print("\nNotes:\n")
        print("\n".join(f"- {n}" for n in rep.notes))
        if rep.errors:
            print("\nErrors:\n\n```\n" + "\n".join(rep.errors) + "\n```")
    else:
        print("\n".join(rep.meta))
        for title, header, right, body in rep.tables:
            print(f"\n{title}\n")
            print(render_text(header, right, body))
        if rep.verdicts:
            print("\nTargets:")
            print("\n".join(f"  {v}" for v in rep.verdicts))
        print("\nNotes:")
        print("\n".join(f"  {n}" for n in rep.notes))
        if rep.errors:
            print("\nErrors:\n" + "\n".join(rep.errors))


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(f"signal {signum}")  # run the finally blocks: stop our redis-servers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
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

    for name in ENV_CLEARED:  # this process: single-process libraries, no backend from env
        os.environ.pop(name, None)
    signal.signal(signal.SIGTERM, _terminate)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {', '.join(unknown)}: choose among {', '.join(PARTS)}")
    sizes = QUICK if args.quick else FULL
    rep = Report()
    started = time.perf_counter()
    start_date = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    binary = find_redis_server(args.redis_server)
    workdir = tempfile.TemporaryDirectory(prefix="bench-redis-")
    servers = [RedisServer(binary, workdir.name, n) for n in ("apytheus", "pytheus")]
    try:
        for server in servers:
            server.start()
        apy_server, pyt_server = servers
        if "record" in parts:
            try:
                run_record(sizes, apy_server, pyt_server, rep)
            except Exception:
                rep.error("part 1 (record)")
        if "scrape" in parts:
            try:
                run_scrape(sizes, apy_server, pyt_server, rep)
            except Exception:
                rep.error("part 2 (scrape)")
        if "aggregation" in parts:
            try:
                run_aggregation(sizes, apy_server, rep)
            except Exception:
                rep.error("part 3 (aggregation)")
        if "native" in parts:
            try:
                run_native(sizes, apy_server, rep)
            except Exception:
                rep.error("part 4 (native histogram scrape)")
    finally:
        for server in servers:
            server.stop()
        workdir.cleanup()
    elapsed = time.perf_counter() - started

    mode = (
        "QUICK (reduced sizes: "
        f"{sizes.counter_series:,} counter + {sizes.histogram_series:,} histogram series for "
        f"the scrape, {sizes.native_series:,} series per native histogram variant, "
        f"{sizes.repeats} repeats, ~{sizes.target_s:g} s per record loop)"
        if sizes.quick
        else f"full, {sizes.repeats} repeats, ~{sizes.target_s:g} s per record loop"
    )
    rep.meta = [
        f"date: {start_date} (start of the run); run took {elapsed:.0f} s",
        f"python: {platform.python_implementation()} {platform.python_version()}",
        f"platform: {platform.platform()}",
        f"cpus: {os.cpu_count()}",
        f"versions: {versions()}",
        f"redis-server: {binary} ({redis_version(binary)}), "
        "two instances (apytheus, pytheus), --save '' --appendonly no",
        f"apytheus source: {source_digest('apytheus')}",
        f"mode: {mode}; values are medians",
        f"parts: {', '.join(p for p in PARTS if p in parts)}",
    ]
    print_report(rep, args.markdown)
    return 0


if __name__ == "__main__":
    try:
        main()
    except SystemExit as exc:  # --help, or SIGTERM (after our redis-servers were stopped)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:  # not a test: report and exit 0 whatever happens
        traceback.print_exc()
    sys.exit(0)
