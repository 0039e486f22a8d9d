#!/usr/bin/env python
"""Soak benchmark: the FastAPI example under ``uvicorn --workers 4`` with and without metrics.

Two variants of the same FastAPI app (``GET /items/{item_id}`` answering a small JSON
body), each served by a fresh ``uvicorn --workers 4`` per run, with the same settings:

* ``bare``: the route only (no middleware, no counter, no ``/metrics``);
* ``apytheus``: ``examples/fastapi_redis/app.py`` as shipped: ``MetricsMiddleware``, a
  labeled counter in the handler, ``/metrics``, and the Redis backend selected by
  ``APYTHEUS_BACKEND_CLASS`` / ``APYTHEUS_BACKEND_CONFIG`` (defaults: a flush every
  second). While the load runs, ``/metrics`` is scraped every second, as Prometheus
  would; that cost is part of the variant.

Method:

* One redis-server for the whole run (a free 127.0.0.1 port, no persistence), stopped by
  its PID at the end; every apytheus run gets a key prefix of its own.
* Each run: start uvicorn (``--loop asyncio --http h11`` unless told otherwise), wait until
  every worker has run its lifespan startup, load it with ``wrk`` for ``--warmup``
  seconds, then for ``--duration`` seconds (one thread, ``--connections`` keep-alive
  connections, paths ``/items/0`` ... ``/items/9999``), stop uvicorn by its PID (and any
  worker it left, by PID).
* uvicorn 0.54's ``--workers`` mode leaves TCP_NODELAY off on its connections (uvicorn
  issue #3149), so every keep-alive request after the first waits ~40 ms for the
  client's delayed ACK, and throughput is ``connections / 40 ms`` whatever the app does.
  By default the script starts uvicorn through ``--serve``, which re-creates the
  listening socket from its file descriptor (the fix proposed upstream) and changes
  nothing else; ``--as-released`` runs ``python -m uvicorn`` unchanged.
* Rounds are interleaved: each round runs both variants, the order alternating.
  The tables show **medians** over the rounds. Cost is ``1 - rps / rps_bare`` on the
  medians; the paired cost is the median of that ratio within each round.
* Connections per worker: the workers share one listening socket, and the kernel gives
  each connection to whichever worker accepts first (asyncio accepts many at once), so
  one worker often holds most of them. Two seconds into each run the script counts them
  per worker (``/proc/net/tcp`` and the workers' descriptors). On two CPUs a run where
  one worker holds them all is served by one core: that split, more than the app,
  decides a run's throughput, so the report also compares like with like.
* CPU per request: user + system time of the uvicorn workers (and of redis-server) during
  the measured load, from ``/proc``, divided by the requests sent. The CPU cost,
  ``1 - cpu_bare / cpu`` on the medians, is the throughput cost the workers would see
  with the CPUs to themselves; it suffers less from competing processes. "Other load"
  is what the whole machine was busy with beyond the server, Redis and wrk, in cores:
  above about 0.1, something else competed and the costs are not trustworthy.
* Count check (apytheus runs): ``/metrics`` is read before and after the measured load;
  the requests recorded for ``/items/{item_id}`` must equal the requests wrk *sent*
  (a Lua script counts them; wrk's "N requests" counts completed ones, and it stops with
  up to one request in flight per connection, which the server still answers). Also:
  no socket errors, no non-2xx answer, every scrape answered 200.

Linux only (``/proc``); needs ``wrk`` and ``redis-server``. The script is not a test: it
always exits 0 once it runs, and reports what it measured. From the repository root::

    python benchmarks/bench_soak.py              # 10 rounds of 15 s, about 7 minutes
    python benchmarks/bench_soak.py --quick      # 2 rounds of 5 s, about 1 minute
    python benchmarks/bench_soak.py --markdown   # the table as Markdown
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

VARIANTS: tuple[str, ...] = ("bare", "apytheus")
ENV_VARIANT = "BENCH_SOAK_VARIANT"
TEMPLATE = "/items/{item_id}"
DISTINCT_IDS = 10_000
WORKERS = 4

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


# --------------------------------------------------------------------------- the bare app
def create_app() -> Any:
    """The example app without any metrics (a uvicorn factory: ``bench_soak:create_app``)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get(TEMPLATE)
    async def read_item(item_id: int) -> dict[str, int | str]:
        kind = "even" if item_id % 2 == 0 else "odd"
        return {"item_id": item_id, "kind": kind}

    return app


# --------------------------------------------------------------------------- uvicorn
def serve(argv: Sequence[str]) -> None:
    """Run the ``uvicorn`` command line, its listening socket with ``proto`` IPPROTO_TCP.

    ``uvicorn --workers N`` binds the socket itself with ``proto`` 0; accepted sockets
    inherit it, and asyncio only sets TCP_NODELAY when ``proto`` is IPPROTO_TCP. Each
    keep-alive request after the first then waits for the client's delayed ACK, about
    40 ms on Linux (uvicorn issue #3149). Re-creating the socket from its file descriptor
    lets the kernel report the protocol, as the fix proposed upstream does.
    """
    import uvicorn.config
    import uvicorn.main

    bind = uvicorn.config.Config.bind_socket

    def bind_socket(config: uvicorn.config.Config) -> socket.socket:
        return socket.socket(fileno=bind(config).detach())

    uvicorn.config.Config.bind_socket = bind_socket  # type: ignore[method-assign,assignment]
    sys.argv = ["uvicorn", *argv]
    uvicorn.main.main()


# --------------------------------------------------------------------------- processes
def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of one process so far (0 if it is gone)."""
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = _stat(int(entry))
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""  # closed meanwhile


def connection_split(port: int, pids: Sequence[int]) -> list[int]:
    """Established connections to ``port`` held by each of ``pids``, largest first.

    The workers share one listening socket; which of them accepts a connection is up to
    the kernel (whoever wakes first), and the split decides how evenly they are loaded.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "01":  # ESTABLISHED
                inodes.add(f"socket:[{f[9]}]")
    split = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        split.append(sum(_link(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds))
    return sorted(split, reverse=True)


def busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (steal included: it was not ours)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, f.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""


def _ping(port: int) -> bool:
    import redis

    try:
        with redis.Redis(host="127.0.0.1", port=port) as client:
            return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot): tells a reused PID from ours."""
    try:
        return _stat(pid)[19]
    except OSError:
        return None


def _kill_if_alive(pid: int, started: str | None) -> None:
    """SIGKILL ``pid`` if it is still the process that started at ``started``."""
    try:
        fields = _stat(pid)
        if fields[0] != "Z" and fields[19] == started:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass  # gone already


class RedisServer:
    """One redis-server on a free 127.0.0.1 port, no persistence; stopped by its PID."""

    def __init__(self, binary: str, workdir: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for _attempt in range(5):
            self.port = _free_port()
            args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
            args += ["--save", "", "--appendonly", "no", "--dir", self.workdir]
            args += ["--daemonize", "no", "--loglevel", "warning"]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _ping(self.port):
                    return
                time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"could not start {self.binary}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

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


class Server:
    """``uvicorn --workers 4`` serving one variant; it and its workers are stopped by PID."""

    def __init__(self, variant: str, args: argparse.Namespace, redis_url: str, tmp: str) -> None:
        self.variant = variant
        self.port = _free_port()
        self.log_path = Path(tmp) / f"uvicorn-{variant}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.workers: dict[int, str | None] = {}  # pid: start time
        self.env = dict(os.environ)
        self.env.pop("APYTHEUS_BACKEND_CLASS", None)
        self.env.pop("APYTHEUS_BACKEND_CONFIG", None)
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), self.env.get("PYTHONPATH", "")) if p
        )
        if variant == "apytheus":
            target = ["examples.fastapi_redis.app:app"]
            config = {"url": redis_url, "key_prefix": f"bench-soak-{uuid.uuid4().hex[:8]}"}
            self.env["APYTHEUS_BACKEND_CLASS"] = "apytheus.backends.redis.RedisBackend"
            self.env["APYTHEUS_BACKEND_CONFIG"] = json.dumps(config)
        else:
            target = ["bench_soak:create_app", "--factory", "--app-dir", str(BENCH_DIR)]
        launcher = ["-m", "uvicorn"] if args.as_released else [__file__, "--serve"]
        self.cmd = [
            sys.executable, *launcher, *target, "--workers", str(WORKERS),
            "--host", "127.0.0.1", "--port", str(self.port), "--loop", args.loop,
            "--http", args.http, "--log-level", "info", "--no-access-log",
        ]  # fmt: skip

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while self.log().count("Application startup complete.") < WORKERS:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited ({self.proc.returncode}): {self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn workers did not start within 60 s: {self.log()}")
            time.sleep(0.05)
        self.workers = {  # not multiprocessing's resource tracker, also a child
            pid: _start_time(pid)
            for pid in children_of(self.proc.pid)
            if "spawn_main" in _cmdline(pid)
        }
        if len(self.workers) != WORKERS:
            raise RuntimeError(f"expected {WORKERS} workers, found {sorted(self.workers)}")
        status, _ = _get(f"{self.base}/items/0")
        if status != 200:
            raise RuntimeError(f"GET /items/0 answered {status}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.workers)

    def problems(self) -> list[str]:
        bad = ("Traceback", "ERROR", "WARNING", "apytheus:")
        return [line for line in self.log().splitlines() if any(b in line for b in bad)]

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for pid, started in self.workers.items():  # a worker the master left behind
            _kill_if_alive(pid, started)


# --------------------------------------------------------------------------- load
WRK_SCRIPT = """\
-- written by benchmarks/bench_soak.py
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  sent = 0  -- global: done() reads it with thread:get("sent")
end
function request()
  local path = "/items/" .. (sent % @IDS@)
  sent = sent + 1
  return wrk.format("GET", path)
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("sent") end
  -- wrk 4 calls request() once on the first thread to check the script, and sends nothing
  total = total - 1
  local e = summary.errors
  io.write(string.format(
    'BENCH {"completed": %d, "sent": %d, "us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"status": %d, "socket": %d}\\n',
    summary.requests, total, summary.duration, latency:percentile(50.0),
    latency:percentile(99.0), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Load:
    completed: int
    sent: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    client_cpu: float = 0.0

    @property
    def rps(self) -> float:
        return self.completed / self.seconds


def run_wrk(wrk: str, script: str, url: str, connections: int, seconds: float) -> Load:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [*cmd, "-s", script, url], capture_output=True, text=True, timeout=seconds + 60
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            r = json.loads(line[6:])
            return Load(
                completed=int(r["completed"]),
                sent=int(r["sent"]),
                seconds=int(r["us"]) / 1e6,
                p50_ms=int(r["p50_us"]) / 1e3,
                p99_ms=int(r["p99_us"]) / 1e3,
                non_2xx=int(r["status"]),
                socket_errors=int(r["socket"]),
                client_cpu=cpu,
            )
    raise RuntimeError(f"wrk printed no summary (rc {proc.returncode}): {proc.stderr[-500:]}")


# --------------------------------------------------------------------------- scraping
_COUNT = re.compile(
    r'^http_request_duration_seconds_count\{[^}]*route="/items/\{item_id\}"[^}]*\} (\S+)$',
    re.MULTILINE,
)


def recorded(base: str) -> float:
    """Requests recorded for the route template, as ``/metrics`` shows them now."""
    status, text = _get(f"{base}/metrics")
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}")
    return sum(float(v) for v in _COUNT.findall(text))


def wait_recorded(base: str, expected: float, timeout: float = 10.0) -> float:
    """Poll ``/metrics`` until it shows ``expected`` requests (or more, or time is up)."""
    deadline = time.monotonic() + timeout
    found = recorded(base)
    while found < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        found = recorded(base)
    return found


class ScrapeLoop:
    """GET /metrics every second in a thread (as Prometheus would), timing each answer."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.ms: list[float] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ScrapeLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        next_at = time.monotonic() + 1.0
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += 1.0
            begin = time.perf_counter()
            try:
                status, _ = _get(f"{self.base}/metrics")
            except OSError:
                status = 0
            if status == 200:
                self.ms.append((time.perf_counter() - begin) * 1e3)
            else:
                self.failed += 1


# --------------------------------------------------------------------------- runs
@dataclass
class Run:
    variant: str
    round: int
    load: Load
    server_us: float  # worker CPU per request sent
    redis_us: float
    other_cores: float
    scrapes_ms: list[float] = field(default_factory=list)
    scrapes_failed: int = 0
    split: list[int] = field(default_factory=list)  # connections per worker, 2 s into the run
    check_ok: bool | None = None
    check: str = ""


@dataclass
class Report:
    args: argparse.Namespace
    wrk: str
    redis_binary: str
    runs: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def of(self, variant: str) -> list[Run]:
        return [r for r in self.runs if r.variant == variant]


def count_check(run: Run, before: float, after: float, problems: list[str], conns: int) -> None:
    load = run.load
    got = int(after - before)
    issues = []
    if got != load.sent:
        issues.append(f"recorded {got} != sent {load.sent}")
    if not load.completed <= load.sent <= load.completed + conns:
        issues.append(f"sent {load.sent} vs completed {load.completed}")
    if load.non_2xx or load.socket_errors:
        issues.append(f"{load.non_2xx} non-2xx, {load.socket_errors} socket errors")
    if run.scrapes_failed:
        issues.append(f"{run.scrapes_failed} scrapes failed")
    if problems:
        issues.append(f"problems: {problems[:2]}")
    detail = f"recorded {got}, wrk sent {load.sent}, completed {load.completed}"
    run.check_ok = not issues
    run.check = ("ok: " if not issues else "mismatch: " + "; ".join(issues) + " ") + detail


def measure(variant: str, rnd: int, args: argparse.Namespace, rep: Report, redis: RedisServer,
            tmp: str) -> None:  # fmt: skip
    server = Server(variant, args, redis.url, tmp)
    script = f"{tmp}/vary.lua"
    try:
        server.start()  # it answered one GET /items/0
        warmup = run_wrk(rep.wrk, script, server.base, args.connections, args.warmup)
        instrumented = variant == "apytheus"
        # the workers flush every second: wait until the warmup is all in Redis
        before = wait_recorded(server.base, 1 + warmup.sent) if instrumented else 0.0
        cpu0, redis0, busy0 = server.cpu(), cpu_seconds(redis.pid), busy_seconds()
        split: list[int] = []
        probe = threading.Timer(
            min(2.0, args.duration / 2),
            lambda: split.extend(connection_split(server.port, list(server.workers))),
        )
        probe.start()
        if instrumented:
            with ScrapeLoop(server.base) as scrapes:
                load = run_wrk(rep.wrk, script, server.base, args.connections, args.duration)
        else:
            scrapes = None
            load = run_wrk(rep.wrk, script, server.base, args.connections, args.duration)
        cpu = server.cpu() - cpu0
        redis_cpu = cpu_seconds(redis.pid) - redis0
        busy = busy_seconds() - busy0
        other = max(busy - cpu - redis_cpu - load.client_cpu, 0.0) / load.seconds
        sent = max(load.sent, 1)
        probe.join()
        run = Run(variant, rnd, load, cpu / sent * 1e6, redis_cpu / sent * 1e6, other)
        run.split = split
        if scrapes is not None:
            run.scrapes_ms, run.scrapes_failed = scrapes.ms, scrapes.failed
        if instrumented:
            after = wait_recorded(server.base, before + load.sent)
            problems = server.problems()
            if before != 1 + warmup.sent:
                problems.append(f"warmup: recorded {before:.0f} != sent {1 + warmup.sent}")
            count_check(run, before, after, problems, args.connections)
        elif load.non_2xx or load.socket_errors or server.problems():
            run.check_ok = False
            run.check = f"{load.non_2xx} non-2xx, {load.socket_errors} socket errors"
        rep.runs.append(run)
        scrape = f"  scrape p50 {_median(run.scrapes_ms) or 0:.1f} ms" if run.scrapes_ms else ""
        _log(
            f"  round {rnd + 1} {variant:<8} {load.rps:7.0f} req/s  p99 {load.p99_ms:6.1f} ms  "
            f"workers {run.server_us:5.0f} µs/req  redis {run.redis_us:4.1f} µs/req  "
            f"other {other:4.2f} cores  connections {'+'.join(map(str, split))}{scrape}"
            + (f"  {run.check}" if run.check else "")
        )
    except Exception:
        rep.errors.append(f"round {rnd + 1}, {variant}:\n{traceback.format_exc()}{server.log()}")
        _log(f"  round {rnd + 1} {variant}: error")
    finally:
        server.stop()


# --------------------------------------------------------------------------- report
def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f} %"


def cost(rep: Report) -> float | None:
    bare = _median([r.load.rps for r in rep.of("bare")])
    mine = _median([r.load.rps for r in rep.of("apytheus")])
    return None if bare is None or mine is None else 1 - mine / bare


def cpu_cost(rep: Report) -> float | None:
    """``1 - cpu_bare / cpu`` on the medians: the throughput cost with the CPUs to itself."""
    bare = _median([r.server_us for r in rep.of("bare")])
    mine = _median([r.server_us for r in rep.of("apytheus")])
    return None if bare is None or mine is None else 1 - bare / mine


def paired(rep: Report) -> list[float]:
    bare = {r.round: r.load.rps for r in rep.of("bare")}
    return [1 - r.load.rps / bare[r.round] for r in rep.of("apytheus") if r.round in bare]


def _shares(runs: Sequence[Run], connections: int) -> str:
    """The busiest worker's connections: median over the runs [min, max]."""
    top = [r.split[0] for r in runs if r.split]
    if not top:
        return "n/a"
    return f"{statistics.median(top):g}/{connections} [{min(top)}, {max(top)}]"


def table(rep: Report) -> tuple[list[str], list[list[str]]]:
    header = [
        "variant", "req/s", "p50 ms", "p99 ms", "cost vs bare", "paired cost [min, max]",
        "workers CPU µs/req", "CPU cost", "Redis CPU µs/req", "other load (cores)",
        "busiest worker's connections", "scrapes (p50 ms)",
        "checks",
    ]  # fmt: skip
    body = []
    for variant in VARIANTS:
        runs = rep.of(variant)
        if not runs:
            continue
        bare = variant == "bare"
        pairs = paired(rep)
        checks = [r.check_ok for r in runs if r.check_ok is not None]
        if bare and not checks:
            check = "—"
        elif checks and all(checks):
            check = f"ok ({len(checks)}/{len(runs)})"
        else:
            check = f"FAILED ({checks.count(False)}/{len(runs)})"
        scrapes = [ms for r in runs for ms in r.scrapes_ms]
        failed = sum(r.scrapes_failed for r in runs)
        body.append(
            [
                variant,
                _num(_median([r.load.rps for r in runs]), ",.0f"),
                _num(_median([r.load.p50_ms for r in runs]), ".1f"),
                _num(_median([r.load.p99_ms for r in runs]), ".1f"),
                "—" if bare else _pct(cost(rep)),
                "—"
                if bare or not pairs
                else f"{_pct(_median(pairs))} [{_pct(min(pairs))}, {_pct(max(pairs))}]",
                _num(_median([r.server_us for r in runs]), ".0f"),
                "—" if bare else _pct(cpu_cost(rep)),
                _num(_median([r.redis_us for r in runs]), ".1f"),
                _num(_median([r.other_cores for r in runs]), ".2f"),
                _shares(runs, rep.args.connections),
                "—"
                if bare
                else f"{len(scrapes)} ok, {failed} failed ({_num(_median(scrapes), '.1f')})",
                check,
            ]
        )
    return header, body


def runs_table(rep: Report) -> tuple[list[str], list[list[str]]]:
    header = ["round", "variant", "req/s", "p99 ms", "workers CPU µs/req", "connections"]
    body = [
        [
            str(r.round + 1),
            r.variant,
            f"{r.load.rps:,.0f}",
            f"{r.load.p99_ms:.1f}",
            f"{r.server_us:.0f}",
            "+".join(map(str, r.split)) or "n/a",
        ]
        for r in sorted(rep.runs, key=lambda r: (r.round, r.variant))
    ]
    return header, body


def verdicts(rep: Report) -> list[str]:
    lines = []
    apy, bare = rep.of("apytheus"), rep.of("bare")
    c = cost(rep)
    if c is not None:
        cpu_bare = _median([r.server_us for r in bare])
        cpu_apy = _median([r.server_us for r in apy])
        assert cpu_bare is not None and cpu_apy is not None
        lines.append(
            f"throughput cost of metrics under 4 workers: {_pct(c)}; CPU cost "
            f"{_pct(cpu_cost(rep))} (workers' CPU {cpu_bare:.0f} -> {cpu_apy:.0f} µs/req, "
            f"Redis {_median([r.redis_us for r in apy]) or 0:.1f} µs/req)"
        )
    for label, one in (("two or more workers", False), ("a single worker", True)):
        # like for like: the split of the connections decides how many cores serve
        group = {
            v: [r.load.rps for r in rep.of(v) if len(r.split) > 1 and (r.split[1] == 0) == one]
            for v in VARIANTS
        }
        b, a = _median(group["bare"]), _median(group["apytheus"])
        if b is not None and a is not None:
            lines.append(
                f"runs where {label} held the connections: bare {b:,.0f} req/s "
                f"(n={len(group['bare'])}), apytheus {a:,.0f} req/s (n={len(group['apytheus'])})"
                f": cost {_pct(1 - a / b)}"
            )
    exact = [r for r in apy if r.check_ok]
    lines.append(
        f"exact counts, no failed request, every scrape answered: {len(exact)}/{len(apy)} runs"
        + ("" if len(exact) == len(apy) else " — NOT met")
    )
    others = [r.other_cores for r in rep.runs]
    if others and max(others) > 0.1:
        lines.append(
            f"other load up to {max(others):.2f} cores: something else competed for the CPUs; "
            "the costs are not trustworthy"
        )
    return lines


def render_text(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, body)])


def render_markdown(header: list[str], body: list[list[str]]) -> str:
    rows = [header, ["---"] + ["---:"] * (len(header) - 1), *body]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split(" Copyright")[0].strip() if first else "?"


def print_report(rep: Report, markdown: bool) -> None:
    a = rep.args
    when = dt.datetime.fromtimestamp(rep.started, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = [
        f"date: {when}; apytheus {_version('apytheus')} (git {_git_head()}); "
        f"the run took {time.time() - rep.started:.0f} s",
        f"machine: {platform.system()} {platform.release()}, {_cpu_model()}, {os.cpu_count()} "
        "CPUs shared by uvicorn, Redis and wrk (nothing pinned)",
        f"python {platform.python_version()}, uvicorn {_version('uvicorn')} ({WORKERS} workers, "
        f"loop {a.loop}, http {a.http}, "
        + ("as released" if a.as_released else "TCP_NODELAY restored: uvicorn issue #3149")
        + f"), fastapi {_version('fastapi')}, "
        f"starlette {_version('starlette')}, redis-py {_version('redis')}, "
        f"{_tool_version([rep.redis_binary, '--version']).split(' sha=')[0]}",
        f"load: {_tool_version([rep.wrk, '-v'])}, 1 thread, {a.connections} connections, "
        f"{a.duration:g} s per run after {a.warmup:g} s of warmup, {a.rounds} interleaved "
        f"rounds, paths /items/0..{DISTINCT_IDS - 1}; apytheus: Redis backend (flush every "
        "1 s), /metrics scraped every second during the load",
    ]
    header, body = table(rep)
    bullet = "* " if markdown else ""
    print("\n".join(bullet + m for m in meta))
    print()
    print(("### " if markdown else "") + f"uvicorn --workers {WORKERS} (medians over the rounds)")
    print()
    print((render_markdown if markdown else render_text)(header, body))
    print()
    print("\n".join(bullet + v for v in verdicts(rep)))
    print()
    print(("### " if markdown else "") + "Every run (connections: held by each worker)")
    print()
    print((render_markdown if markdown else render_text)(*runs_table(rep)))
    failed = [r for r in rep.runs if r.check_ok is False]
    if failed:
        print()
        for r in failed:
            print(f"{bullet}round {r.round + 1}, {r.variant}: {r.check}")
    if rep.errors:
        print()
        print("errors:")
        for e in rep.errors:
            print(e)


# --------------------------------------------------------------------------- main
def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--serve"]:  # a server this script started (not for users)
        serve(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 s (about 1 minute)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 10, quick 2)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 15, quick 5)")
    parser.add_argument("--warmup", type=float, help="seconds of warmup (default 3, quick 2)")
    parser.add_argument("--connections", type=int, default=32, help="default 32")
    parser.add_argument("--http", default="h11", help="uvicorn --http (default h11)")
    parser.add_argument("--loop", default="asyncio", help="uvicorn --loop (default asyncio)")
    parser.add_argument("--redis-server", help="redis-server binary (default: /usr/bin, PATH)")
    parser.add_argument(
        "--as-released",
        action="store_true",
        help="run uvicorn as released: without TCP_NODELAY under --workers, each keep-alive "
        "request waits ~40 ms (uvicorn issue #3149), which hides what the metrics cost",
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 10)
    args.duration = args.duration or (5.0 if args.quick else 15.0)
    args.warmup = args.warmup or (2.0 if args.quick else 3.0)

    wrk = shutil.which("wrk")
    if wrk is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")
    redis_binary = args.redis_server or next(
        (
            p
            for p in ("/usr/bin/redis-server", shutil.which("redis-server"))
            if p and os.access(p, os.X_OK)
        ),
        None,
    )
    if redis_binary is None:
        parser.error("no redis-server found (pass --redis-server PATH)")
    rep = Report(args, wrk, redis_binary)
    signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        Path(tmp, "vary.lua").write_text(WRK_SCRIPT.replace("@IDS@", str(DISTINCT_IDS)))
        redis = RedisServer(redis_binary, tmp)
        try:
            redis.start()
            _log(f"redis-server pid {redis.pid} on port {redis.port}")
            for rnd in range(args.rounds):
                order = VARIANTS if rnd % 2 == 0 else VARIANTS[::-1]
                for variant in order:
                    measure(variant, rnd, args, rep, redis, tmp)
        except KeyboardInterrupt:
            _log("interrupted: reporting the runs so far")
        finally:
            redis.stop()
    _log(f"done in {time.time() - rep.started:.0f} s")
    print_report(rep, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
