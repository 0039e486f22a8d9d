#!/usr/bin/env python
"""Middleware benchmark: requests/s of a Starlette app under uvicorn, with and without metrics.

One minimal Starlette app (``GET /items/{item_id}`` answering a short plain-text
body) is served in four variants, each by its own ``uvicorn`` process with one
worker, on a free 127.0.0.1 port:

* ``bare``: no metrics middleware;
* ``noop``: a pure ASGI middleware that wraps ``receive`` and ``send`` (as every
  metrics middleware must, to see sizes and the status) and records nothing: the
  floor that any such middleware pays;
* ``apytheus``: `apytheus.middleware.MetricsMiddleware` (defaults), with
  ``make_asgi_app()`` at ``/metrics``;
* ``starlette_exporter``: ``starlette_exporter.PrometheusMiddleware``
  (``group_paths=True``), with ``handle_metrics`` at ``/metrics``;
* ``instrumentator``: prometheus-fastapi-instrumentator's
  ``Instrumentator().instrument(app).expose(app)`` (it takes a plain Starlette
  app, so no variant needs FastAPI).

Method:

* Every measured run starts a fresh server process, checks it answers, loads it
  for ``--warmup`` seconds, then for ``--duration`` seconds with ``wrk`` (one
  thread, ``--connections`` keep-alive connections, loopback only). A Lua script
  varies the path (``/items/0`` ... ``/items/9999``), so the route template must
  hold. The server is stopped by PID (SIGTERM, then SIGKILL) after each run.
* Runs are interleaved: each round runs every variant once, and the order
  rotates from round to round, so a slow phase of the machine hits all of them.
* Results are medians over the rounds: requests/s, p99 latency (wrk's own
  histogram), and the server's CPU time per request (from ``/proc/<pid>/stat``).
  The throughput cost of a variant is ``1 - rps / rps_bare`` on the medians;
  the "paired" cost is the median over rounds of the same ratio within a round.
* After every instrumented run the script scrapes the app's ``/metrics`` (before
  and after the measured load) and checks the request count recorded for
  ``/items/{item_id}``: it must equal the number of requests wrk *sent*. wrk's
  "N requests" counts *completed* responses, and stops with up to one request in
  flight per connection, which the server still answers and records; so the
  check also requires ``completed <= sent <= completed + connections``, no socket
  errors and no non-2xx responses, and no route label other than the template.
* A second, in-process part sends GETs straight into each variant's ASGI app
  (no server, no socket) and keeps the best of interleaved repeats: the extra
  µs per request of each middleware. It is a lower bound: in a server the
  middleware's code runs between uvicorn's, with colder caches, and costs more.

The load generator shares the machine with the server: nothing is pinned. Linux
only (the CPU times come from ``/proc``). The
script is not a test: it always exits 0 (targets are reported, not enforced).
Run it from the repository root::

    python benchmarks/bench_middleware.py             # full run, about 5 minutes
    python benchmarks/bench_middleware.py --quick     # about 70 s
    python benchmarks/bench_middleware.py --markdown  # the table as Markdown
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
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
import time
import traceback
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

VARIANTS: tuple[str, ...] = ("bare", "noop", "apytheus", "starlette_exporter", "instrumentator")
PEERS: tuple[str, ...] = ("starlette_exporter", "instrumentator")
ENV_VARIANT = "BENCH_MIDDLEWARE_VARIANT"
TEMPLATE = "/items/{item_id}"
DISTINCT_IDS = 10_000
# apytheus' extra cost (over bare) is at most this many times the no-op middleware's
TARGET_VS_NOOP = 1.3

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

# Per instrumented variant: the sample that counts requests, and its route label.
COUNT_SAMPLE: dict[str, tuple[str, str]] = {
    "apytheus": ("http_request_duration_seconds_count", "route"),
    "starlette_exporter": ("starlette_request_duration_seconds_count", "path"),
    "instrumentator": ("http_requests_total", "handler"),
}


# --------------------------------------------------------------------------- the app
def create_app() -> Any:
    """The app of the variant named in ``$BENCH_MIDDLEWARE_VARIANT`` (a uvicorn factory)."""
    return build_app(os.environ.get(ENV_VARIANT, "bare"))


def build_app(variant: str) -> Any:
    """The Starlette app of one variant (build each variant once per process)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import BaseRoute, Route

    async def item(request: Request) -> Response:
        return PlainTextResponse(f"item {request.path_params['item_id']}\n")

    routes: list[BaseRoute] = [Route(TEMPLATE, item)]
    middleware: list[Middleware] = []
    if variant == "bare":
        return Starlette(routes=routes)
    if variant == "noop":
        middleware.append(Middleware(NoopMiddleware))
        return Starlette(routes=routes, middleware=middleware)
    if variant == "apytheus":
        from apytheus import make_asgi_app
        from apytheus.middleware import MetricsMiddleware

        routes.append(Route("/metrics", make_asgi_app()))
        middleware.append(Middleware(MetricsMiddleware))
        return Starlette(routes=routes, middleware=middleware)
    if variant == "starlette_exporter":
        from starlette_exporter import PrometheusMiddleware, handle_metrics

        routes.append(Route("/metrics", handle_metrics))
        middleware.append(
            Middleware(PrometheusMiddleware, group_paths=True, skip_paths=["/metrics"])
        )
        return Starlette(routes=routes, middleware=middleware)
    if variant == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator

        app = Starlette(routes=routes)
        Instrumentator(excluded_handlers=["/metrics"]).instrument(app).expose(app)
        return app
    raise ValueError(f"unknown variant {variant!r}")


class NoopMiddleware:
    """Wraps ``receive`` and ``send`` like a metrics middleware, and records nothing."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = {"status": 0, "sent": 0, "received": 0}

        async def wrapped_receive() -> Any:
            message = await receive()
            seen["received"] += len(message.get("body", b""))
            return message

        async def wrapped_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["sent"] += len(message.get("body", b""))
            await send(message)

        await self.app(scope, wrapped_receive, wrapped_send)


# --------------------------------------------------------------------------- server
def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return int(response.status), response.read().decode()


class Server:
    """One uvicorn process (one worker) serving one variant; stopped by its PID."""

    def __init__(self, variant: str, http: str, workdir: str) -> None:
        self.variant = variant
        self.http = http
        self.port = _free_port()
        self.log_path = Path(workdir) / f"uvicorn-{variant}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(os.environ)
        env[ENV_VARIANT] = self.variant
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        cmd = [
            sys.executable, "-m", "uvicorn", "bench_middleware:create_app", "--factory",
            "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1", "--loop", "asyncio", "--http", self.http,
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited ({self.proc.returncode}): {self.log()}")
            try:
                status, _ = _get(f"{self.base}/items/0", timeout=1)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"uvicorn did not answer within 20 s: {self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """user + system CPU time of the server process so far."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (steal included: it was not ours)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, f.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- load
@dataclass
class Load:
    """One load run: wrk's summary plus the requests it sent."""

    completed: int
    sent: int
    seconds: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    client_cpu: float = 0.0  # CPU seconds the load generator used

    @property
    def rps(self) -> float:
        return self.completed / self.seconds


WRK_SCRIPT = """\
-- written by benchmarks/bench_middleware.py
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
    'BENCH {"completed": %d, "sent": %d, "us": %d, "p99_us": %d, ' ..
    '"status": %d, "socket": %d}\\n',
    summary.requests, total, summary.duration, latency:percentile(99.0), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


def run_wrk(wrk: str, script: str, url: str, connections: int, seconds: float) -> Load:
    duration = f"{max(1, round(seconds))}s"
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{duration}", "--timeout", "5s", "-s", script, url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            r = json.loads(line[6:])
            return Load(
                completed=int(r["completed"]),
                sent=int(r["sent"]),
                seconds=int(r["us"]) / 1e6,
                p99_ms=int(r["p99_us"]) / 1e3,
                non_2xx=int(r["status"]),
                socket_errors=int(r["socket"]),
                client_cpu=cpu,
            )
    raise RuntimeError(f"wrk printed no summary (rc {proc.returncode}): {proc.stderr[-500:]}")


async def _python_load(port: int, connections: int, seconds: float) -> Load:
    """A bounded asyncio load generator: keep-alive GETs, one in flight per connection."""
    sent = completed = non_2xx = errors = 0
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def one_connection() -> None:
        nonlocal sent, completed, non_2xx, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                path = f"/items/{sent % DISTINCT_IDS}"
                begin = time.perf_counter()
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                sent += 1
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - begin)
                completed += 1
                if not head.startswith(b"HTTP/1.1 2"):
                    non_2xx += 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    begin, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    elapsed, cpu = time.perf_counter() - begin, time.process_time() - cpu
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return Load(completed, sent, elapsed, p99 * 1e3, non_2xx, errors, cpu)


def run_python_load(port: int, connections: int, seconds: float) -> Load:
    return asyncio.run(_python_load(port, connections, seconds))


# --------------------------------------------------------------------------- metrics check
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def route_counts(text: str, sample: str, label: str) -> dict[str, float]:
    """Sum of ``sample`` per value of ``label`` in a text exposition."""
    counts: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None or m.group(1) != sample:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        key = labels.get(label, "")
        counts[key] = counts.get(key, 0.0) + float(m.group(3))
    return counts


def scrape(server: Server) -> dict[str, float]:
    sample, label = COUNT_SAMPLE[server.variant]
    status, text = _get(f"{server.base}/metrics")
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}")
    return route_counts(text, sample, label)


def count_check(
    before: dict[str, float], after: dict[str, float], load: Load, connections: int
) -> tuple[bool, str]:
    recorded = int(after.get(TEMPLATE, 0.0) - before.get(TEMPLATE, 0.0))
    others = sorted(k for k in after if k != TEMPLATE)
    problems = []
    if recorded != load.sent:
        problems.append(f"recorded {recorded} != sent {load.sent}")
    if not load.completed <= load.sent <= load.completed + connections:
        problems.append(f"sent {load.sent} vs completed {load.completed}")
    if load.non_2xx or load.socket_errors:
        problems.append(f"{load.non_2xx} non-2xx, {load.socket_errors} socket errors")
    if others:
        problems.append(f"other route labels: {others[:3]}")
    detail = (
        f"recorded {recorded}, wrk sent {load.sent}, completed {load.completed} "
        f"({load.sent - load.completed} in flight at stop)"
    )
    if problems:
        return False, f"mismatch: {'; '.join(problems)} ({detail})"
    return True, f"ok: {detail}"


# --------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One measured run of one variant."""

    variant: str
    round: int
    load: Load
    cpu_us_per_req: float
    other_cores: float
    check_ok: bool | None = None
    check: str = ""


@dataclass
class Report:
    args: argparse.Namespace
    loadgen: str
    runs: list[Run] = field(default_factory=list)
    inprocess: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def of(self, variant: str) -> list[Run]:
        return [r for r in self.runs if r.variant == variant]


def measure(variant: str, rnd: int, args: argparse.Namespace, rep: Report, tmp: str) -> None:
    server = Server(variant, args.http, tmp)

    def load(seconds: float) -> Load:
        if rep.loadgen == "python":
            return run_python_load(server.port, args.connections, seconds)
        return run_wrk(rep.loadgen, f"{tmp}/vary.lua", server.base, args.connections, seconds)

    try:
        server.start()
        load(args.warmup)
        time.sleep(0.3)  # the warmup's last in-flight requests
        instrumented = variant in COUNT_SAMPLE
        before = scrape(server) if instrumented else {}
        cpu0, busy0 = server.cpu_seconds(), busy_seconds()
        result = load(args.duration)
        cpu, busy = server.cpu_seconds() - cpu0, busy_seconds() - busy0
        time.sleep(0.3)  # requests still in flight when the generator stopped
        other = max(busy - cpu - result.client_cpu, 0.0) / result.seconds
        run = Run(variant, rnd, result, cpu / max(result.sent, 1) * 1e6, other)
        if instrumented:
            run.check_ok, run.check = count_check(before, scrape(server), result, args.connections)
        elif result.non_2xx or result.socket_errors:
            run.check_ok = False
            run.check = f"{result.non_2xx} non-2xx, {result.socket_errors} socket errors"
        rep.runs.append(run)
        _log(
            f"  round {rnd + 1} {variant:<18} {result.rps:7.0f} req/s  "
            f"p99 {result.p99_ms:6.2f} ms  server {run.cpu_us_per_req:5.1f} µs/req  "
            f"other {other:4.2f} cores" + (f"  count check: {run.check}" if run.check else "")
        )
    except Exception:
        rep.errors.append(f"round {rnd + 1}, {variant}:\n{traceback.format_exc()}{server.log()}")
        _log(f"  round {rnd + 1} {variant}: error")
    finally:
        server.stop()


# --------------------------------------------------------------------------- in-process
async def _drive(app: Any, n: int) -> float:
    """µs per request of ``n`` GETs sent straight into the ASGI app (no server, no socket)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    begin = time.perf_counter()
    for i in range(n):
        path = f"/items/{i % DISTINCT_IDS}"
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        await app(scope, receive, send)
    return (time.perf_counter() - begin) / n * 1e6


def run_inprocess(variants: Sequence[str], repeats: int, n: int, rep: Report) -> None:
    """Each variant's app, in this process, timed per request over interleaved repeats."""

    async def go() -> None:
        apps: dict[str, Any] = {}

        async def prepare(variant: str) -> None:
            try:
                apps[variant] = build_app(variant)
                await _drive(apps[variant], n)  # warm up (and build the middleware stack)
            except Exception:
                apps.pop(variant, None)
                rep.errors.append(f"in-process, {variant}:\n{traceback.format_exc()}")

        for variant in variants:
            await prepare(variant)
        for i in range(repeats):
            shift = i % len(apps) if apps else 0
            order = list(apps)[shift:] + list(apps)[:shift]
            for variant in order:
                rep.inprocess.setdefault(variant, []).append(await _drive(apps[variant], n))

    asyncio.run(go())


# --------------------------------------------------------------------------- report
def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _best(values: Sequence[float]) -> float | None:
    return min(values) if values else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f} %"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def paired_costs(rep: Report, variant: str) -> list[float]:
    bare = {r.round: r.load.rps for r in rep.of("bare")}
    return [1 - r.load.rps / bare[r.round] for r in rep.of(variant) if r.round in bare]


def cost(rep: Report, variant: str) -> float | None:
    """Throughput cost, ``1 - rps / rps_bare``, on the medians."""
    bare = _median([r.load.rps for r in rep.of("bare")])
    mine = _median([r.load.rps for r in rep.of(variant)])
    return None if bare is None or mine is None else 1 - mine / bare


def cpu_cost(rep: Report, variant: str) -> float | None:
    """Server CPU cost, ``1 - cpu_bare / cpu``, on the medians (the cost at 100 % CPU)."""
    bare = _median([r.cpu_us_per_req for r in rep.of("bare")])
    mine = _median([r.cpu_us_per_req for r in rep.of(variant)])
    return None if bare is None or mine is None else 1 - bare / mine


def server_table(rep: Report) -> tuple[list[str], list[list[str]]]:
    header = [
        "variant", "req/s", "p99 ms", "cost vs bare", "paired cost [min, max]",
        "server CPU µs/req", "CPU cost", "other load (cores)", "count check",
    ]  # fmt: skip
    body = []
    for variant in VARIANTS:
        runs = rep.of(variant)
        if not runs and variant not in rep.args.variants:
            continue
        paired = paired_costs(rep, variant)
        checks = [r.check_ok for r in runs if r.check_ok is not None]
        if variant not in COUNT_SAMPLE and not checks:
            check = "—"
        elif not checks:
            check = "n/a"
        elif all(checks):
            check = f"ok ({len(checks)}/{len(checks)})"
        else:
            check = f"mismatch ({checks.count(False)}/{len(checks)})"
        bare = variant == "bare"
        body.append(
            [
                variant,
                _num(_median([r.load.rps for r in runs]), ",.0f"),
                _num(_median([r.load.p99_ms for r in runs]), ".2f"),
                "—" if bare else _pct(cost(rep, variant)),
                "—"
                if bare or not paired
                else f"{_pct(_median(paired))} [{_pct(min(paired))}, {_pct(max(paired))}]",
                _num(_median([r.cpu_us_per_req for r in runs]), ".1f"),
                "—" if bare else _pct(cpu_cost(rep, variant)),
                _num(_median([r.other_cores for r in runs]), ".2f"),
                check,
            ]
        )
    return header, body


def inprocess_table(rep: Report) -> tuple[list[str], list[list[str]]]:
    header = ["variant", "µs/request (best)", "extra µs/request", "implied cost (lower bound)"]
    bare = _best(rep.inprocess.get("bare", []))
    server_bare = _median([r.cpu_us_per_req for r in rep.of("bare")])
    body = []
    for variant in VARIANTS:
        mine = _best(rep.inprocess.get(variant, []))
        if mine is None:
            continue
        extra = None if bare is None else mine - bare
        implied = None
        if extra is not None and server_bare is not None:
            implied = extra / (server_bare + extra)
        body.append(
            [
                variant,
                _num(mine, ".1f"),
                "—" if variant == "bare" else _num(extra, "+.1f"),
                "—" if variant == "bare" else _pct(implied),
            ]
        )
    return header, body


def _over_noop(apy: float | None, noop: float | None) -> float | None:
    return None if apy is None or noop is None or noop <= 0 else apy / noop


def verdicts(rep: Report) -> list[str]:
    apy = cost(rep, "apytheus")
    if apy is None:
        return ["apytheus: no measurement, targets not evaluated"]
    lines = []
    server_bare = _median([r.cpu_us_per_req for r in rep.of("bare")])
    extras = {
        v: (_median([r.cpu_us_per_req for r in rep.of(v)]) or 0) - (server_bare or 0)
        for v in ("apytheus", "noop")
    }
    ratio = _over_noop(extras["apytheus"], extras["noop"]) if server_bare is not None else None
    lines.append(
        f"apytheus extra server CPU per request {extras['apytheus']:+.1f} µs <= "
        f"{TARGET_VS_NOOP}x the no-op middleware's {extras['noop']:+.1f} µs: "
        + (
            "n/a"
            if ratio is None
            else f"{ratio:.2f}x, " + ("met" if ratio <= TARGET_VS_NOOP else "NOT met")
        )
    )
    bare_in = _best(rep.inprocess.get("bare", []))
    apy_in, noop_in = _best(rep.inprocess.get("apytheus", [])), _best(rep.inprocess.get("noop", []))
    if bare_in is not None and apy_in is not None and noop_in is not None:
        ratio_in = _over_noop(apy_in - bare_in, noop_in - bare_in)
        lines.append(
            f"apytheus extra in-process µs per request {apy_in - bare_in:+.1f} <= "
            f"{TARGET_VS_NOOP}x the no-op's {noop_in - bare_in:+.1f}: "
            + (
                "n/a"
                if ratio_in is None
                else f"{ratio_in:.2f}x, " + ("met" if ratio_in <= TARGET_VS_NOOP else "NOT met")
            )
        )
    for peer in PEERS:
        other = cost(rep, peer)
        if other is None:
            lines.append(f"apytheus cost < {peer} cost: n/a (no measurement)")
            continue
        lines.append(
            f"apytheus cost {_pct(apy)} < {peer} cost {_pct(other)}: "
            + ("met" if apy < other else "NOT met")
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


def _wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def print_report(rep: Report, markdown: bool) -> None:
    a = rep.args
    when = dt.datetime.fromtimestamp(rep.started, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    gen = "python asyncio generator" if rep.loadgen == "python" else _wrk_version(rep.loadgen)
    meta = [
        f"date: {when}; apytheus {_version('apytheus')} (git {_git_head()})",
        f"machine: {platform.system()} {platform.release()}, {_cpu_model()}, "
        f"{os.cpu_count()} CPUs shared by the server and the load generator (nothing pinned)",
        f"python {platform.python_version()}, uvicorn {_version('uvicorn')} (1 worker, loop "
        f"asyncio, http {a.http}), starlette {_version('starlette')}, "
        f"starlette-exporter {_version('starlette_exporter')}, "
        f"prometheus-fastapi-instrumentator {_version('prometheus-fastapi-instrumentator')}, "
        f"prometheus_client {_version('prometheus_client')}",
        f"load: {gen}, 1 thread, {a.connections} connections, {a.duration:g} s per run after "
        f"{a.warmup:g} s of warmup, {a.rounds} interleaved rounds, "
        f"paths /items/0..{DISTINCT_IDS - 1}",
    ]
    if not a.no_inprocess:
        meta.append(
            f"in-process: {a.inproc_repeats} interleaved repeats of {a.inproc_n} requests "
            "per variant"
        )
    if rep.loadgen == "python":
        meta.append(
            "warning: the Python load generator shares the CPUs with the server and may "
            "itself be the bottleneck; the costs are then understated"
        )
    h1, b1 = server_table(rep)
    h2, b2 = inprocess_table(rep)
    render = render_markdown if markdown else render_text
    bullet = "* " if markdown else ""
    print("\n".join(bullet + m for m in meta))
    print()
    print(("### " if markdown else "") + "Under uvicorn (medians over the rounds)")
    print()
    print(render(h1, b1))
    print()
    if b2:
        print(
            ("### " if markdown else "") + "In-process ASGI cost (best of the repeats, no server)"
        )
        print()
        print(render(h2, b2))
        print()
    print("\n".join(bullet + ("" if markdown else "target: ") + v for v in verdicts(rep)))
    failed = [r for r in rep.runs if r.check_ok is False]
    if failed:
        print()
        for r in failed:
            print(f"{bullet}count check, round {r.round + 1}, {r.variant}: {r.check}")
    if rep.errors:
        print()
        print("errors:")
        for e in rep.errors:
            print(e)


# --------------------------------------------------------------------------- main
def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 s (about 70 s)")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 10, quick 3)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 4, quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds of warmup (default 2, quick 1)")
    parser.add_argument("--connections", type=int, default=32, help="default 32")
    parser.add_argument("--http", default="h11", choices=("h11", "httptools"))
    parser.add_argument(
        "--loadgen", default="auto", choices=("auto", "wrk", "python"),
        help="auto: wrk if on PATH, else the (slower) Python generator",
    )  # fmt: skip
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--no-inprocess", action="store_true", help="skip the in-process part")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 10)
    args.duration = args.duration or (3.0 if args.quick else 4.0)
    args.warmup = args.warmup or (1.0 if args.quick else 2.0)
    args.inproc_repeats = 5 if args.quick else 15
    args.inproc_n = 1_000 if args.quick else 2_000

    if args.http == "httptools" and importlib.util.find_spec("httptools") is None:
        parser.error("--http httptools: httptools is not importable (pip install httptools)")
    wrk = shutil.which("wrk")
    if args.loadgen == "wrk" and wrk is None:
        parser.error("wrk is not on PATH (apt-get install wrk), or use --loadgen python")
    loadgen = wrk if wrk is not None and args.loadgen != "python" else "python"
    if loadgen == "python":
        _log("using the Python load generator: it may be the bottleneck on a 2-core machine")
    rep = Report(args, loadgen)
    signal.signal(signal.SIGTERM, _terminate)
    variants = [v for v in VARIANTS if v in args.variants]
    with tempfile.TemporaryDirectory(prefix="bench-middleware-") as tmp:
        Path(tmp, "vary.lua").write_text(WRK_SCRIPT.replace("@IDS@", str(DISTINCT_IDS)))
        try:
            for rnd in range(args.rounds):
                shift = rnd % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    measure(variant, rnd, args, rep, tmp)
            if not args.no_inprocess:
                _log("in-process ASGI cost")
                run_inprocess(variants, args.inproc_repeats, args.inproc_n, rep)
        except KeyboardInterrupt:
            _log("interrupted: reporting the runs so far")
    _log(f"done in {time.time() - rep.started:.0f} s")
    print_report(rep, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
