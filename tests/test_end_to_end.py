"""End to end: uvicorn --workers 4, one Redis, a real Prometheus scraping every second.

Prometheus 2.42 as started by default negotiates OpenMetrics; started with
``--enable-feature=native-histograms`` it asks for protobuf first and gets it.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import anyio
import httpx
import pytest
from conftest import require_tool, wait_for
from redis_server import RedisServer

from apytheus.exposition import PROTOBUF_CONTENT_TYPE

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 2000


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process this test started, by its PID (SIGTERM, then SIGKILL)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def app_port(
    redis_server: RedisServer, key_prefix: str, free_tcp_port_factory: Callable[[], int]
) -> Iterator[int]:
    port = free_tcp_port_factory()
    config = {"url": redis_server.url, "key_prefix": key_prefix, "flush_interval": 0.2}
    env = {
        **os.environ,
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(config),
    }
    args = [sys.executable, "-m", "uvicorn", "examples.fastapi_redis.app:app", "--workers", "4"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(args, cwd=ROOT, env=env)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/metrics"), 60, "uvicorn workers")
        yield port
    finally:
        stop(server)


@contextmanager
def running_prometheus(
    app_port: int, workdir: Path, port: int, *flags: str, config_extra: str = ""
) -> Iterator[str]:
    """Prometheus scraping the example on ``app_port`` (its prometheus.yml); stopped by PID."""
    binary = require_tool("prometheus", "prometheus")
    config = workdir / "prometheus.yml"
    template = (ROOT / "examples" / "fastapi_redis" / "prometheus.yml").read_text()
    config.write_text(template.replace("127.0.0.1:8000", f"127.0.0.1:{app_port}") + config_extra)
    args = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}"]
    args += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *flags]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(f"{url}/-/ready"), 60, "prometheus to be ready")
        yield url
    finally:
        stop(process)


@pytest.fixture
def prometheus(
    app_port: int, tmp_path: Path, free_tcp_port_factory: Callable[[], int]
) -> Iterator[str]:
    with running_prometheus(app_port, tmp_path, free_tcp_port_factory()) as url:
        yield url


class InstantSample(TypedDict):
    """One sample of a Prometheus instant query's result (``resultType`` ``vector``)."""

    metric: dict[str, str]
    value: list[float | str]  # [unix time, "the value"]


def instant_result(prometheus: str, promql: str) -> Any:
    """The ``result`` of an instant query (its JSON, as Prometheus' HTTP API gives it)."""
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


def query(prometheus: str, promql: str) -> list[InstantSample]:
    result: list[InstantSample] = instant_result(prometheus, promql)
    return result


def has_data(prometheus: str, promql: str) -> bool:
    return bool(query(prometheus, promql))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the load generator's loop only
async def test_prometheus_sees_every_request_of_every_worker_by_route_template(
    app_port: int, prometheus: str
) -> None:
    ids = [random.randrange(1_000_000) for _ in range(REQUESTS)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app_port}", timeout=30) as client:

        async def send(chunk: list[int]) -> None:
            for item_id in chunk:
                assert (await client.get(f"/items/{item_id}")).status_code == 200

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(send, ids[i::20])

    promql = 'sum(http_request_duration_seconds_count{route="/items/{item_id}"})'

    def total() -> float:
        found = query(prometheus, promql)
        return float(found[0]["value"][1]) if found else 0.0

    deadline = time.monotonic() + 90
    while (seen := total()) != REQUESTS:
        assert seen <= REQUESTS, f"Prometheus counted {seen} requests, more than were sent"
        assert time.monotonic() < deadline, f"Prometheus saw {seen} of {REQUESTS} requests"
        await anyio.sleep(0.5)
    routes = {
        s["metric"]["route"] for s in query(prometheus, "http_request_duration_seconds_count")
    }
    assert routes == {"/items/{item_id}"}, f"raw paths leaked into labels: {routes}"
    kinds = query(prometheus, "sum(items_viewed_total)")
    assert float(kinds[0]["value"][1]) == REQUESTS
    check_grafana_dashboard(prometheus)


def check_grafana_dashboard(prometheus: str) -> None:
    """Every query of examples/grafana runs on this Prometheus; rate and latency have data."""
    dashboard = json.loads((ROOT / "examples" / "grafana" / "apytheus-http.json").read_text())
    variables = {"$__rate_interval": "1m", "$route": ".*"}
    with_data = {"Requests per second, by route", "Latency percentiles, by route"}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in variables.items():
                expr = expr.replace(name, value)
            response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
            assert response.status_code == 200, (panel["title"], expr, response.text)
            if panel["title"] in with_data:  # rate() needs two scrapes since the requests
                wait_for(partial(has_data, prometheus, expr), 20, f"data for {expr}")


# --------------------------------------------------------------------------- protobuf
# The Accept header of Prometheus 2.42 with native histograms (scrape/scrape.go,
# `scrapeAcceptHeaderWithProtobuf`), as tests/test_negotiation.py has it
PROTOBUF_FIRST_ACCEPT = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
ITEM_VIEWS = 1000
ORDER_SIZES = [i % 23 + 1 for i in range(230)]  # items per order: 1 to 23, ten times each
STOCK_SETS, FIRST_STOCK, LAST_STOCK = 40, 40, 7


class NativePrometheus(NamedTuple):
    url: str
    accepts: list[str]  # the Accept header of each scrape of a recording target


@contextmanager
def accept_recorder(port: int) -> Iterator[list[str]]:
    """A scrape target that keeps the Accept header of every request (a thread, stopped after)."""
    accepts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            accepts.append(self.headers.get("Accept", ""))
            body = b"recorder_up 1\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield accepts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def native_prometheus(
    app_port: int, tmp_path: Path, free_tcp_port_factory: Callable[[], int]
) -> Iterator[NativePrometheus]:
    """Prometheus with native histograms (protobuf first) and `scrape_body_size_bytes`."""
    recorder = free_tcp_port_factory()
    job = "  - job_name: recorder\n    static_configs:\n"
    job += f'      - targets: ["127.0.0.1:{recorder}"]\n'
    flags = "--enable-feature=native-histograms,extra-scrape-metrics"
    port = free_tcp_port_factory()
    with (
        accept_recorder(recorder) as accepts,
        running_prometheus(app_port, tmp_path, port, flags, config_extra=job) as url,
    ):
        yield NativePrometheus(url, accepts)


def scalar(prometheus: str, promql: str) -> float | None:
    found = query(prometheus, promql)
    assert len(found) <= 1, (promql, found)
    return float(found[0]["value"][1]) if found else None


SETTLE_SECONDS = 30


async def settle(prometheus: str, expected: Mapping[str, float], totals: bool = True) -> None:
    """Poll until every query gives its value exactly; ``totals`` never overshoot on the way."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        seen = {promql: scalar(prometheus, promql) for promql in expected}
        if seen == dict(expected):
            return
        if totals:
            over = {q: v for q, v in seen.items() if v is not None and v > expected[q]}
            assert not over, f"Prometheus counted more than was recorded: {over}"
        assert time.monotonic() < deadline, f"Prometheus has {seen}, expected {expected}"
        await anyio.sleep(0.25)


async def test_prometheus_with_native_histograms_reads_protobuf_with_exact_values(
    app_port: int, native_prometheus: NativePrometheus
) -> None:
    """Prometheus 2.42 with native histograms: every worker's counter, histogram and gauge
    arrive exactly, by protobuf, the UTF-8 name `shop.orders` as `shop_orders_total`."""
    prometheus = native_prometheus.url
    ids = random.sample(range(1_000_000), ITEM_VIEWS)
    sizes: list[int] = []  # of the /items/{item_id} responses
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app_port}", timeout=30) as client:

        async def view(chunk: list[int]) -> None:
            for item_id in chunk:
                response = await client.get(f"/items/{item_id}")
                assert response.status_code == 200
                sizes.append(len(response.content))

        async def order(chunk: list[int]) -> None:
            for items in chunk:
                response = await client.post("/orders", params={"items": items})
                assert response.status_code == 200

        async def set_stock(times: int) -> None:
            for _ in range(times):
                assert (await client.put(f"/stock/{FIRST_STOCK}")).status_code == 200

        async with anyio.create_task_group() as tg:  # 30 connections, over the 4 workers
            for i in range(20):
                tg.start_soon(view, ids[i::20])
            for i in range(6):
                tg.start_soon(order, ORDER_SIZES[i::6])
            for _ in range(4):
                tg.start_soon(set_stock, STOCK_SETS // 4)

        item_route = 'route="/items/{item_id}"'
        stock_sets = 'sum(http_request_duration_seconds_count{route="/stock/{count}"})'
        even = sum(1 for i in ids if i % 2 == 0)
        await settle(
            prometheus,
            {
                'sum(items_viewed_total{kind="even"})': even,
                'sum(items_viewed_total{kind="odd"})': ITEM_VIEWS - even,
                f"sum(http_request_duration_seconds_count{{{item_route}}})": ITEM_VIEWS,
                stock_sets: STOCK_SETS,
                # a histogram of the middleware: the response sizes the client received
                f"sum(http_response_size_bytes_count{{{item_route}}})": ITEM_VIEWS,
                f"sum(http_response_size_bytes_sum{{{item_route}}})": sum(sizes),
                f'sum(http_response_size_bytes_bucket{{{item_route},le="10.0"}})': 0,
                f'sum(http_response_size_bytes_bucket{{{item_route},le="100.0"}})': ITEM_VIEWS,
                # the example's histogram, and its counter with a UTF-8 name, escaped
                "shop_orders_total": len(ORDER_SIZES),
                "order_items_count": len(ORDER_SIZES),
                "order_items_sum": sum(ORDER_SIZES),
                'order_items_bucket{le="2.0"}': sum(1 for n in ORDER_SIZES if n <= 2),
                'order_items_bucket{le="5.0"}': sum(1 for n in ORDER_SIZES if n <= 5),
                'order_items_bucket{le="20.0"}': sum(1 for n in ORDER_SIZES if n <= 20),
                'order_items_bucket{le="+Inf"}': len(ORDER_SIZES),
                # every worker that set it wrote the same value
                "items_in_stock": FIRST_STOCK,
            },
        )
        # Every earlier write has landed (the requests they came with are counted): a
        # later one wins `mostrecent`, whichever worker makes it.
        assert (await client.put(f"/stock/{LAST_STOCK}")).status_code == 200
        expected = {"items_in_stock": LAST_STOCK, stock_sets: STOCK_SETS + 1}
        await settle(prometheus, expected, totals=False)

    check_protobuf_was_read(native_prometheus, app_port)


def check_protobuf_was_read(prometheus: NativePrometheus, app_port: int) -> None:
    """Prometheus asked for protobuf, the app answered it, and that is what Prometheus read."""
    # What Prometheus asks for, as a target of its own sees it: protobuf first.
    wait_for(lambda: bool(prometheus.accepts), 10, "a scrape of the recorder")
    assert set(prometheus.accepts) == {PROTOBUF_FIRST_ACCEPT}
    # The app answers that with protobuf, names escaped (2.42 does not ask for UTF-8) ...
    with httpx.Client(base_url=f"http://127.0.0.1:{app_port}", timeout=5) as client:

        def metrics(accept: str) -> httpx.Response:
            # a new connection each time: whichever worker takes it answers
            return client.get("/metrics", headers={"Accept": accept, "Connection": "close"})

        protobuf = metrics(PROTOBUF_FIRST_ACCEPT)
        assert protobuf.headers["content-type"] == PROTOBUF_CONTENT_TYPE
        assert b"shop_orders_total" in protobuf.content
        assert b"shop.orders" not in protobuf.content
        text = metrics("text/plain;version=0.0.4")
        om = metrics("application/openmetrics-text;version=1.0.0")
        assert text.headers["content-type"].startswith("text/plain")
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        # ... and the bodies Prometheus read are that protobuf, by size (not text, not OM)
        assert len(protobuf.content) not in {len(text.content), len(om.content)}

        def read_protobuf() -> bool:
            size = scalar(prometheus.url, 'scrape_body_size_bytes{job="shop"}')
            return size == len(metrics(PROTOBUF_FIRST_ACCEPT).content)

        wait_for(read_protobuf, 15, "Prometheus' last scrape to be the protobuf body's size")
    # Parsed as protobuf: an OpenMetrics scrape would store `_created` samples as series
    # and keep the counters' metadata under `items_viewed`, not `items_viewed_total`.
    assert not query(prometheus.url, '{__name__=~".+_created"}')
    response = httpx.get(
        f"{prometheus.url}/api/v1/targets/metadata",
        params={"match_target": '{job="shop"}'},
        timeout=5,
    )
    metadata = {m["metric"]: m["type"] for m in response.json()["data"]}
    assert metadata["items_viewed_total"] == metadata["shop_orders_total"] == "counter"
    assert metadata["order_items"] == "histogram"
    assert metadata["items_in_stock"] == "gauge"
    assert "items_viewed" not in metadata
    names = httpx.get(f"{prometheus.url}/api/v1/label/__name__/values", timeout=5).json()["data"]
    assert "shop_orders_total" in names
    assert not [name for name in names if "." in name]
    targets = httpx.get(f"{prometheus.url}/api/v1/targets", timeout=5).json()["data"]
    shop = [t for t in targets["activeTargets"] if t["labels"]["job"] == "shop"]
    assert [(t["health"], t["lastError"]) for t in shop] == [("up", "")]


# --------------------------------------------------------------------------- native
# Job durations the client reports to `POST /jobs`, log-uniform from 1 ms to 10 s
# (seeded). An odd number, so that the median is one of them: the bucket where
# `histogram_quantile(0.5, ...)` interpolates (rank 0.5 * 401 = 200.5) is the one that
# holds the 201st value, the true median.
_jobs = random.Random(20240607)
JOB_SECONDS = [10 ** _jobs.uniform(-3, 1) for _ in range(401)]
SCHEMA_3_GROWTH = 2 ** (1 / 8)  # `native_bucket_factor=1.1` picks schema 3


class NativeHistogram(TypedDict):
    """A native histogram as Prometheus' HTTP API gives it (numbers as strings)."""

    count: str
    sum: str
    # [boundary rule, lower, upper, count]; rule 0 is (lower, upper]; empty buckets left out
    buckets: list[tuple[int, str, str, str]]


class HistogramSample(TypedDict):
    """One sample of an instant query's result whose value is a native histogram."""

    metric: dict[str, str]
    histogram: tuple[float, NativeHistogram]  # [unix time, the histogram]


def query_histogram(prometheus: str, promql: str) -> NativeHistogram:
    """The one native histogram ``promql`` gives: a ``histogram`` field, no ``value``."""
    found: list[HistogramSample] = instant_result(prometheus, promql)
    assert len(found) == 1, (promql, found)
    assert "value" not in found[0], f"{promql} is not a native histogram: {found[0]}"
    return found[0]["histogram"][1]


async def test_prometheus_native_histogram_of_four_workers_counts_exactly_and_finds_the_median(
    app_port: int, native_prometheus: NativePrometheus
) -> None:
    """Known durations sent to the 4 workers: Prometheus (native histograms on) has them as
    one native histogram of schema 3 whose count and buckets are exact, whose sum is
    their sum, and whose median estimate lies in the bucket of the true median."""
    prometheus = native_prometheus.url
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app_port}", timeout=30) as client:

        async def report(chunk: list[float]) -> None:
            for seconds in chunk:
                response = await client.post("/jobs", params={"seconds": seconds})
                assert response.status_code == 200
                assert response.json() == {"seconds": seconds}  # the value, to the last bit

        async with anyio.create_task_group() as tg:  # 20 connections, over the 4 workers
            for i in range(20):
                tg.start_soon(report, JOB_SECONDS[i::20])

    jobs = len(JOB_SECONDS)
    await settle(
        prometheus,
        {
            "histogram_count(sum(job_duration_seconds))": jobs,
            'sum(http_request_duration_seconds_count{route="/jobs"})': jobs,
        },
    )
    # The series is the histogram: no `_count`, `_sum` or `_bucket` series beside it.
    assert not query(prometheus, '{__name__=~"job_duration_seconds_.+"}')
    histogram = query_histogram(prometheus, "sum(job_duration_seconds)")
    assert float(histogram["count"]) == jobs

    # Schema 3, and every bucket holds exactly the values sent that fall in it.
    buckets = [
        (float(lower), float(upper), float(n)) for _, lower, upper, n in histogram["buckets"]
    ]
    assert {rule for rule, *_ in histogram["buckets"]} == {0}  # all (lower, upper]
    for lower, upper, n in buckets:
        assert upper / lower == pytest.approx(SCHEMA_3_GROWTH, rel=1e-12), (lower, upper)
        assert math.log2(upper) * 8 == pytest.approx(round(math.log2(upper) * 8), abs=1e-9)
        assert n == sum(1 for s in JOB_SECONDS if lower < s <= upper), (lower, upper)
    assert sum(n for *_, n in buckets) == jobs

    total = math.fsum(JOB_SECONDS)
    assert float(histogram["sum"]) == pytest.approx(total, rel=1e-9)
    histogram_sum = scalar(prometheus, "histogram_sum(sum(job_duration_seconds))")
    assert histogram_sum == pytest.approx(total, rel=1e-9)

    median = statistics.median(JOB_SECONDS)
    estimate = scalar(prometheus, "histogram_quantile(0.5, sum(job_duration_seconds))")
    assert estimate is not None
    [(lower, upper)] = [(lo, up) for lo, up, _ in buckets if lo < median <= up]
    width = upper - lower
    assert lower < estimate <= upper, (estimate, median, lower, upper)
    assert abs(estimate - median) <= width, (estimate, median, width)
    print(
        f"\nPrometheus: count {histogram['count']}, sum {histogram_sum!r} (sent {total!r});"
        f" median estimate {estimate!r}, true median {median!r},"
        f" bucket ({lower!r}, {upper!r}] of width {width!r}"
    )
