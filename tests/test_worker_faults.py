"""Worker faults with real processes and a real redis-server (docs/multiprocess.md, "When
something fails"): a worker killed with SIGKILL, uvicorn stopped with SIGTERM, and Redis
restarted empty while a real Prometheus scrapes every second.

Run as a script (``python tests/test_worker_faults.py``), this file is a worker: it
records into the backend its environment selects, as stdin tells it.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import require_tool, wait_for
from redis_server import RedisServer
from worker_process import WorkerProcess

from apytheus import Counter, Gauge, Histogram
from apytheus.backends import HistogramSeries, ScalarSeries
from apytheus.backends.redis import RedisBackend

ROOT = Path(__file__).resolve().parent.parent
APP = "examples.fastapi_redis.app:app"
ROUTE = "/items/{item_id}"
DURATION_LABELS = ["method", "route", "status_code"]


# --------------------------------------------------------------------------- processes
def backend_env(server: RedisServer, key_prefix: str, **config: object) -> dict[str, str]:
    """The environment selecting the Redis backend, as a worker of a real deployment sees it."""
    return {
        **os.environ,
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(
            {"url": server.url, "key_prefix": key_prefix, **config}
        ),
    }


def stop_process(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """Stop a process this test started, by its PID: SIGTERM, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def children_of(pid: int) -> list[int]:
    """PIDs of the live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def started_at(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot), None if it does not run (or is a zombie).

    A PID with the start time seen earlier is still the same process, not a reused PID.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


class Uvicorn:
    """``uvicorn --workers N`` on 127.0.0.1:<port>; it and its workers are stopped by PID."""

    def __init__(
        self, app: str, port: int, workers: int, env: dict[str, str], log: Path, *extra: str
    ) -> None:
        self.port = port
        self.workers = workers
        self.log = log
        self.args = [sys.executable, "-m", "uvicorn", app, "--workers", str(workers)]
        self.args += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
        # a loaded machine must not make uvicorn replace a worker (its exit flushes early)
        self.args += ["--no-access-log", "--timeout-worker-healthcheck", "120", *extra]
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.started: dict[int, str | None] = {}  # the workers: pid -> start time

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """Start, and wait until every worker has run its lifespan startup."""
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(
            lambda: (
                self.log_text().count("Application startup complete.") >= self.workers
                or self.process is None
                or self.process.poll() is not None
            ),
            timeout,
            f"{self.workers} uvicorn workers to start",
        )
        assert self.process.poll() is None, f"uvicorn exited:\n{self.log_text()}"
        self.started = {  # the workers, not multiprocessing's resource tracker
            pid: started_at(pid)
            for pid in children_of(self.process.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        }
        assert len(self.started) == self.workers, self.started

    @property
    def worker_pids(self) -> list[int]:
        return list(self.started)

    def running(self) -> list[int]:
        """The workers (seen at start) that still run."""
        return [pid for pid, t in self.started.items() if t and started_at(pid) == t]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def problems(self) -> list[str]:
        """Log lines that report an error (uvicorn's and apytheus' warnings included)."""
        bad = ("Traceback", "ERROR", "WARNING", "apytheus:")
        return [line for line in self.log_text().splitlines() if any(b in line for b in bad)]

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM to the master (it stops its workers gracefully); its exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Stop the master by PID, then any worker it left behind, by PID."""
        if self.process is not None:
            stop_process(self.process)
        for pid in self.running():
            os.kill(pid, signal.SIGKILL)


class Prometheus:
    """A real Prometheus scraping one target every second, stopped by its PID."""

    def __init__(self, binary: str, target: str, port: int, workdir: Path) -> None:
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: app\n"
            f"    static_configs:\n      - targets: [{target!r}]\n"
        )
        self.url = f"http://127.0.0.1:{port}"
        args = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}"]
        args += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: answers(f"{self.url}/-/ready"), 60, "prometheus to be ready")

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        assert response.status_code == 200, (promql, response.text)
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        found = self.query(promql)
        assert len(found) <= 1, found
        return float(found[0]["value"][1]) if found else None

    def stop(self) -> None:
        stop_process(self.process)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def get_items(base: str, ids: Sequence[int], connections: int = 8) -> int:
    """GET /items/<id> for every id over ``connections`` keep-alive connections; all 200."""

    def one_connection(chunk: Sequence[int]) -> int:
        with httpx.Client(base_url=base, timeout=30) as client:
            for item_id in chunk:
                response = client.get(f"/items/{item_id}")
                assert response.status_code == 200, response.text
        return len(chunk)

    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        chunks = [ids[i::connections] for i in range(connections)]
        return sum(pool.map(one_connection, chunks))


# --------------------------------------------------------------------------- reading Redis
@pytest.fixture
def scraper(redis_server: RedisServer, key_prefix: str) -> Iterator[RedisBackend]:
    """A reader of the same Redis and keys that records nothing.

    Not made the process' backend: metrics other tests left alive (aiohttp keeps
    the apps it served) would follow a switch and be flushed into these keys.
    """
    backend = RedisBackend(
        {"url": redis_server.url, "key_prefix": key_prefix, "flush_interval": 3600}
    )
    try:
        yield backend
    finally:
        backend.close(flush=False)


def read(scraper: RedisBackend, metric: Counter | Gauge | Histogram) -> dict[str, float]:
    """Every worker's merged value of ``metric`` per first label value ("" without labels).

    The metric is made with ``registry=None`` and never touched here, so this process
    adds no series (and no worker value) of its own. Histograms give their count.
    """
    spec = metric._family.spec
    out: dict[str, float] = {}
    for series in scraper.collect([spec])[spec]:
        pairs = series.labels.pairs
        key = pairs[0][1] if pairs else ""
        if isinstance(series, HistogramSeries):
            value = float(sum(series.snapshot()[0]))
        else:
            assert isinstance(series, ScalarSeries)
            value = series.value()
        out[key] = out.get(key, 0.0) + value
    return out


def item_totals(scraper: RedisBackend) -> tuple[float, float]:
    """(requests recorded for /items/{item_id}, ``items_viewed`` total) in Redis now."""
    duration = Histogram("http_request_duration_seconds", "d", DURATION_LABELS, registry=None)
    viewed = Counter("items_viewed", "v", ["kind"], registry=None)
    return read(scraper, duration).get("GET", 0.0), sum(read(scraper, viewed).values())


# --------------------------------------------------------------------------- 1. SIGKILL
class Worker(WorkerProcess):
    """A worker process (this file run as a script) driven line by line over its stdin."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__([__file__], env, log)
        ready, _, self.id = self.line().partition(" ")
        assert ready == "ready", ready

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()
        assert self.line() == "ok", command

    def exit_code(self) -> int:
        """Ask the worker to leave its lifespan (a final flush) and exit; its exit code."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"exit\n")
        self.process.stdin.close()
        return self.process.wait(timeout=30)


def worker_main() -> None:
    """Run as a worker: record what stdin says, inside ``apytheus.lifespan()``."""
    import anyio
    import anyio.to_thread

    import apytheus
    from apytheus.backends import get_backend

    jobs = Counter("jobs", "Jobs done", ["who"])
    busy = Gauge("busy", "A livesum gauge", multiprocess_mode="livesum")
    held = Gauge("held", "A sum gauge", multiprocess_mode="sum")

    def reply(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    async def serve() -> None:
        async with apytheus.lifespan():
            backend = get_backend()
            assert isinstance(backend, RedisBackend)
            reply(f"ready {backend.worker}")
            while True:
                words = (await anyio.to_thread.run_sync(sys.stdin.readline)).split()
                if not words or words[0] == "exit":
                    return
                if words[0] == "inc":
                    child = jobs.labels(who=words[1])
                    for _ in range(int(words[2])):
                        child.inc()
                elif words[0] == "set":
                    busy.set(float(words[1]))
                    held.set(float(words[1]))
                else:
                    raise SystemExit(f"unknown command {words}")
                reply("ok")

    anyio.run(serve)


VICTIM_FLUSH = 5.0  # long: the test kills the victim between two of its flushes
VICTIM_TTL = 6.0  # heartbeat_ttl must be longer than flush_interval


def test_a_killed_worker_loses_only_what_it_recorded_since_its_last_flush(
    redis_server: RedisServer, key_prefix: str, scraper: RedisBackend, tmp_path: Path
) -> None:
    """Deterministic: the victim records 300, its flush lands, it records 50 more and is
    killed long before its next flush (5 s later; its heartbeat in Redis proves it). Exactly
    the 300 remain; the survivors' counts stay exact; its livesum share goes when its
    heartbeat expires, and never before; the sum gauge keeps its last flushed value."""
    jobs = Counter("jobs", "Jobs done", ["who"], registry=None)
    busy = Gauge("busy", "A livesum gauge", registry=None, multiprocess_mode="livesum")
    held = Gauge("held", "A sum gauge", registry=None, multiprocess_mode="sum")
    workers: list[Worker] = []
    try:
        victim = Worker(
            backend_env(
                redis_server, key_prefix, flush_interval=VICTIM_FLUSH, heartbeat_ttl=VICTIM_TTL
            ),
            tmp_path / "victim.log",
        )
        workers.append(victim)
        victim.send("set 7")
        victim.send("inc victim 300")
        survivors = []
        for i in range(2):
            survivor = Worker(
                backend_env(redis_server, key_prefix, flush_interval=0.1),
                tmp_path / f"survivor{i}.log",
            )
            workers.append(survivor)
            survivors.append(survivor)
            survivor.send(f"set {i + 1}")
            survivor.send(f"inc s{i} 100")

        # the victim's first flush lands (the survivors flush every 0.1 s)
        def flushed() -> bool:
            return read(scraper, jobs) == {"victim": 300, "s0": 100, "s1": 100} and read(
                scraper, held
            ) == {"": 10.0}

        wait_for(flushed, VICTIM_FLUSH + 20, "every worker's first flush")
        workers_key = f"{{{key_prefix}}}:workers"
        client = redis_server.client()
        expires = client.zscore(workers_key, victim.id)
        assert expires is not None
        # recorded after that flush, lost with the process: 50 increments, a new gauge value
        victim.send("set 100")
        victim.send("inc victim 50")
        victim.process.send_signal(signal.SIGKILL)
        assert victim.process.wait(timeout=15) == -signal.SIGKILL
        assert client.zscore(workers_key, victim.id) == expires, (
            f"the victim flushed again before it was killed: the machine stalled for more "
            f"than its flush_interval ({VICTIM_FLUSH} s), so this test proves nothing"
        )
        assert time.time() < expires - 1, "the victim's heartbeat is about to expire already"
        assert read(scraper, busy) == {"": 10.0}, "a live worker's livesum share was dropped"
        assert read(scraper, jobs) == {"victim": 300, "s0": 100, "s1": 100}

        # the survivors go on; the dead worker's livesum share goes once its heartbeat expires
        for i, survivor in enumerate(survivors):
            survivor.send(f"inc s{i} 100")
        deadline = expires + 10
        while (live := read(scraper, busy)) != {"": 3.0}:
            assert live == {"": 10.0}, live
            assert time.time() < deadline, "the killed worker's livesum share never expired"
            time.sleep(0.05)
        assert time.time() >= expires, "the livesum share went before the heartbeat expired"
        assert read(scraper, held) == {"": 10.0}, "a sum gauge lost the killed worker's value"
        for survivor in survivors:
            assert survivor.exit_code() == 0, survivor.log.read_text()
        assert read(scraper, jobs) == {"victim": 300, "s0": 200, "s1": 200}
        # the survivors stopped cleanly and took their shares (1 and 2) with them; the
        # killed worker's 7 counts until worker_retention
        assert read(scraper, held) == {"": 7.0}
    finally:
        for worker in workers:
            worker.stop()


# --------------------------------------------------------------------------- 2. SIGTERM
def lifespan_app() -> Any:
    """The example's route and middleware, with ``FastAPI(lifespan=apytheus.lifespan)``.

    A uvicorn factory (``--factory``); nothing scrapes it, so it has no ``/metrics``.
    """
    from fastapi import FastAPI

    import apytheus
    from apytheus.middleware import MetricsMiddleware

    viewed = Counter("items_viewed", "Item pages served, by kind.", ["kind"])
    app = FastAPI(lifespan=apytheus.lifespan)
    app.add_middleware(MetricsMiddleware)

    @app.get(ROUTE)
    async def read_item(item_id: int) -> dict[str, int | str]:
        kind = "even" if item_id % 2 == 0 else "odd"
        viewed.labels(kind=kind).inc()
        return {"item_id": item_id, "kind": kind}

    return app


@pytest.mark.parametrize(
    "app",
    [
        pytest.param(
            [APP],
            id="MetricsMiddleware-only",
        ),
        pytest.param(
            ["test_worker_faults:lifespan_app", "--factory", "--app-dir", str(ROOT / "tests")],
            id="lifespan=apytheus.lifespan",
        ),
    ],
)
def test_sigterm_to_uvicorn_lands_every_workers_final_flush(
    redis_server: RedisServer,
    key_prefix: str,
    scraper: RedisBackend,
    tmp_path: Path,
    free_tcp_port_factory: Callable[[], int],
    app: list[str],
) -> None:
    """SIGTERM to the uvicorn master: every worker runs its lifespan shutdown, and its final
    flush lands. An hour between flushes, so only that flush can deliver the counts."""
    env = backend_env(redis_server, key_prefix, flush_interval=3600)
    server = Uvicorn(app[0], free_tcp_port_factory(), 2, env, tmp_path / "uvicorn.log", *app[1:])
    try:
        server.start()
        served = get_items(server.url, range(600))
        assert item_totals(scraper) == (0.0, 0.0), "something flushed before shutdown"
        assert server.terminate() == 0, server.log_text()
        assert not server.running(), f"uvicorn left workers running: {server.running()}"
        assert item_totals(scraper) == (served, served)
        seq = redis_server.client().hgetall(f"{{{key_prefix}|items_viewed}}:seq")
        assert 1 <= len(seq) <= 2, seq  # the workers that served requests, each flushed once
        assert server.problems() == []
    finally:
        server.stop()


# --------------------------------------------------------------------------- 3. Redis empty
def test_redis_restarted_empty_looks_like_an_ordinary_counter_reset_to_prometheus(
    redis_server_factory: Callable[..., RedisServer],
    key_prefix: str,
    tmp_path: Path,
    free_tcp_port_factory: Callable[[], int],
) -> None:
    """Redis restarted without persistence: the next flushes send only new deltas, and a
    real Prometheus sees one ordinary counter reset (resets() == 1, increase() counts
    across it, rates stay >= 0), as for a restarted process."""
    binary = require_tool("prometheus", "prometheus")
    redis = redis_server_factory()  # no persistence: a restart comes back empty
    config = {"flush_interval": 0.2, "socket_timeout": 1, "socket_connect_timeout": 1}
    env = backend_env(redis, key_prefix, **config)
    server = Uvicorn(APP, free_tcp_port_factory(), 2, env, tmp_path / "uvicorn.log")
    prometheus: Prometheus | None = None
    count = f'http_request_duration_seconds_count{{route="{ROUTE}"}}'
    before, after = 400, 150
    try:
        server.start()
        (tmp_path / "prom").mkdir()
        prometheus = Prometheus(
            binary, f"127.0.0.1:{server.port}", free_tcp_port_factory(), tmp_path / "prom"
        )
        prom = prometheus
        assert get_items(server.url, range(before)) == before

        def seen() -> float | None:
            return prom.scalar(f"sum({count})")

        wait_for(lambda: seen() == before, 30, f"Prometheus to see {before} requests")
        wait_for(lambda: (prom.scalar(f"count_over_time({count}[1m])") or 0) >= 3, 15, "3 scrapes")

        redis.kill()  # SIGKILL, no persistence: everything in Redis is gone
        redis.start()
        # empty; the workers notice at their next flush and write their series again, from 0
        restarted = redis.client().hgetall(f"{{{key_prefix}|items_viewed}}:v")
        assert all(float(v) == 0 for v in restarted.values()), restarted
        assert get_items(server.url, range(after)) == after
        wait_for(lambda: seen() == after, 30, f"Prometheus to see {after} requests")

        # the old totals are gone; only the new deltas were sent
        client = redis.client()
        viewed = client.hgetall(f"{{{key_prefix}|items_viewed}}:v")
        assert {text(k): float(v) for k, v in viewed.items()} == {
            '["even"]': after / 2,
            '["odd"]': after / 2,
        }
        # Prometheus saw one ordinary counter reset, per series, in every counter
        inf_bucket = 'http_request_duration_seconds_bucket{le="+Inf"}'
        for promql in (count, "items_viewed_total", inf_bucket):
            found = prom.query(f"resets({promql}[2m])")
            assert found, promql
            assert {float(s["value"][1]) for s in found} == {1.0}, (promql, found)
        samples = [float(v) for _, v in prom.query(f"{count}[2m]")[0]["values"]]
        drops = [i for i in range(1, len(samples)) if samples[i] < samples[i - 1]]
        assert len(drops) == 1, samples
        assert samples[drops[0] - 1] == before and samples[-1] == after, samples
        assert samples[drops[0] :] == sorted(samples[drops[0] :]), samples
        # increase() counts across the reset like for a restarted process; rates stay >= 0
        increase = prom.scalar(f"sum(increase({count}[2m]))")
        assert increase is not None and increase >= before - samples[0] + after, increase
        lowest = prom.scalar(f"min(min_over_time(rate({count}[3s])[2m:1s]))")
        assert lowest is not None and lowest >= 0, lowest
        assert not [line for line in server.problems() if "Traceback" in line]
    finally:
        if prometheus is not None:
            prometheus.stop()
        server.stop()


if __name__ == "__main__":
    worker_main()
