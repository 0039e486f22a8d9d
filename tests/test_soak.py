"""Soak: the FastAPI example under ``uvicorn --workers 4`` and one Redis, under a steady
load from wrk while ``/metrics`` is scraped every second. Afterwards the totals equal,
exactly, the requests wrk sent, and nothing failed on the way.

It runs in the normal suite with 20 s of load (25 to 35 s in all); set
``APYTHEUS_SOAK_SECONDS`` for a longer run. Loopback only; every process is stopped by
its PID.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import require_tool
from redis_server import RedisServer
from test_worker_faults import APP, ROUTE, Uvicorn, backend_env

SOAK_SECONDS = float(os.environ.get("APYTHEUS_SOAK_SECONDS", "20"))
# uvicorn 0.54's --workers mode leaves TCP_NODELAY off (uvicorn issue #3149): each keep-alive
# request waits ~40 ms for a delayed ACK, so a steady load needs many connections
CONNECTIONS = 128
WORKERS = 4
DISTINCT_IDS = 10_000

# wrk counts *completed* responses; this script also counts the requests it *sent*. wrk 4
# calls request() once on the first thread to check the script (sending nothing), before
# any connection: that call takes id 0 and is subtracted, so the ids sent are 1..sent.
WRK_SCRIPT = """\
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  sent = 0
end
function request()
  local path = "/items/" .. (sent % @IDS@)
  sent = sent + 1
  return wrk.format("GET", path)
end
function done(summary, latency, requests)
  local total = -1
  for _, t in ipairs(threads) do total = total + t:get("sent") end
  local e = summary.errors
  io.write(string.format(
    'SOAK {"completed": %d, "sent": %d, "us": %d, "p99_us": %d, "status": %d, ' ..
    '"socket": %d}\\n', summary.requests, total, summary.duration,
    latency:percentile(99.0), e.status, e.connect + e.read + e.write + e.timeout))
end
"""

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def samples(text: str, name: str, *matching: str) -> list[tuple[str, float]]:
    """(labels, value) of every ``name`` sample whose labels contain all of ``matching``."""
    found = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m.group(1) == name and all(x in (m.group(2) or "") for x in matching):
            found.append((m.group(2) or "", float(m.group(3))))
    return found


@dataclass
class Scrape:
    at: float
    status: int
    requests: float = 0.0  # http_request_duration_seconds_count of the route
    viewed: dict[str, float] = field(default_factory=dict)  # items_viewed_total by kind
    flush_errors: float = 0.0
    error: str = ""


class ScrapeLoop:
    """GET /metrics every second in a thread, as Prometheus would, keeping every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.scrapes: list[Scrape] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scrape-loop", daemon=True)

    def __enter__(self) -> ScrapeLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def scrape(self, client: httpx.Client) -> Scrape:
        at = time.monotonic()
        try:
            response = client.get(f"{self.url}/metrics")
        except httpx.HTTPError as exc:
            return Scrape(at, 0, error=repr(exc))
        if response.status_code != 200:
            return Scrape(at, response.status_code, error=response.text[:200])
        text = response.text
        route = f'route="{ROUTE}"'
        return Scrape(
            at,
            200,
            requests=sum(v for _, v in samples(text, "http_request_duration_seconds_count", route)),
            viewed={
                labels.split('"')[1]: value for labels, value in samples(text, "items_viewed_total")
            },
            flush_errors=sum(v for _, v in samples(text, "apytheus_redis_flush_errors_total")),
        )

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            next_at = time.monotonic()
            while not self._stop.wait(max(0.0, next_at - time.monotonic())):
                next_at += 1.0
                self.scrapes.append(self.scrape(client))

    def latest(self) -> Scrape:
        with httpx.Client(timeout=5) as client:
            return self.scrape(client)


@dataclass
class Load:
    completed: int
    sent: int
    seconds: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


def run_wrk(wrk: str, script: Path, url: str, seconds: float) -> Load:
    args = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{round(seconds)}s", "--timeout", "5s"]
    done = subprocess.run(
        [*args, "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 30
    )
    for line in done.stdout.splitlines():
        if line.startswith("SOAK "):
            r = json.loads(line[5:])
            return Load(
                r["completed"],
                r["sent"],
                r["us"] / 1e6,
                r["p99_us"] / 1e3,
                r["status"],
                r["socket"],
            )
    raise AssertionError(f"wrk printed no summary (rc {done.returncode}):\n{done.stderr}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.timeout(SOAK_SECONDS + 60)
def test_four_workers_under_load_count_every_request_exactly(
    redis_server: RedisServer,
    key_prefix: str,
    tmp_path: Path,
    free_tcp_port_factory: Callable[[], int],
) -> None:
    wrk = require_tool("wrk", "wrk")
    script = tmp_path / "soak.lua"
    script.write_text(WRK_SCRIPT.replace("@IDS@", str(DISTINCT_IDS)))
    env = backend_env(redis_server, key_prefix)  # the defaults: a flush every second
    server = Uvicorn(APP, free_tcp_port_factory(), WORKERS, env, tmp_path / "uvicorn.log")
    try:
        server.start()
        rss_before = {pid: rss_mb(pid) for pid in server.worker_pids}
        with ScrapeLoop(server.url) as loop:
            load = run_wrk(wrk, script, f"{server.url}/items/0", SOAK_SECONDS)
            during = len(loop.scrapes)
            deadline = time.monotonic() + 20
            while (last := loop.latest()).requests != load.sent:
                assert last.status == 200, last
                assert last.requests < load.sent, f"{last.requests} recorded, {load.sent} sent"
                assert time.monotonic() < deadline, f"{last.requests} of {load.sent} recorded"
                time.sleep(0.1)
        rss_after = {pid: rss_mb(pid) for pid in server.worker_pids}

        # the load ran, and nothing failed on the way
        assert load.non_2xx == 0 and load.socket_errors == 0, load
        assert load.completed <= load.sent <= load.completed + CONNECTIONS, load
        assert load.completed >= 50 * SOAK_SECONDS, f"too little load to mean anything: {load}"
        # exact totals: every request wrk sent, by route and by label value
        assert last.requests == load.sent
        assert last.viewed == {"even": load.sent // 2, "odd": (load.sent + 1) // 2}
        # every scrape answered, while the load ran too, and the totals never went back
        scrapes = loop.scrapes
        failed = [s for s in scrapes if s.status != 200]
        assert not failed, failed[:3]
        assert during >= SOAK_SECONDS / 2, f"only {during} scrapes in {SOAK_SECONDS} s of load"
        totals = [s.requests for s in scrapes]
        assert totals == sorted(totals), "a scrape showed fewer requests than an earlier one"
        assert max(s.flush_errors for s in scrapes) == 0
        # no worker died or logged a problem
        assert server.running() == server.worker_pids, "a worker died"
        assert server.problems() == []
        print(
            f"\nsoak: {load.sent} requests in {load.seconds:.1f} s "
            f"({load.completed / load.seconds:.0f} req/s, p99 {load.p99_ms:.1f} ms), "
            f"{len(scrapes)} scrapes, worker RSS MB "
            + ", ".join(f"{rss_before[p]:.0f}->{rss_after[p]:.0f}" for p in server.worker_pids)
        )
    finally:
        server.stop()
