"""prometheus_client code runs on apytheus after ``patch_client(prometheus_client)``.

Most tests run the code samples of prometheus_client's README (the seed
``002``) unchanged, after the patch; where a sample serves forever, loops
forever or needs a machine's paths, the adapted lines say so in a comment.

Patching changes the imported ``prometheus_client`` module, which other test
files use as an oracle: an autouse fixture puts back every attribute of every
``prometheus_client`` module after each test, and the last test checks that
the module is the one this file found when it was imported.
"""

from __future__ import annotations

import doctest
import gzip
import http.server
import importlib
import os
import sys
import textwrap
import threading
import time
import types
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import prometheus_client
import prometheus_client.exposition
import prometheus_client.multiprocess  # imported by patch_client: in the snapshot too
import pytest
import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from redis_server import RedisServer

import apytheus
from apytheus.backends import MetricSpec
from apytheus.backends.redis import RedisBackend
from apytheus.experimental.compatibility import patch_client, unpatch_client
from apytheus.exposition import PROMETHEUS_CONTENT_TYPE, generate_metrics
from apytheus.registry import REGISTRY

Snapshot = dict[str, dict[str, Any]]


def snapshot() -> Snapshot:
    """The attributes of every loaded prometheus_client module."""
    return {
        name: dict(vars(module))
        for name, module in list(sys.modules.items())
        if name == "prometheus_client" or name.startswith("prometheus_client.")
    }


def differences(before: Snapshot) -> list[str]:
    """The attributes that are not what they were in ``before`` (new submodules aside)."""
    found = []
    for name, saved in before.items():
        current = vars(sys.modules[name])
        found += [f"{name}.{k}" for k, v in saved.items() if current.get(k, saved) is not v]
        found += [
            f"{name}.{k} (added)"
            for k, v in current.items()
            if k not in saved and not isinstance(v, types.ModuleType)
        ]
    return found


AT_IMPORT = snapshot()


@pytest.fixture(autouse=True)
def restore_prometheus_client() -> Iterator[None]:
    """Undo the patch after each test, whatever happened, and put back any attribute left."""
    before = snapshot()
    try:
        yield
    finally:
        unpatch_client(prometheus_client)
        left = differences(before)
        for name, saved in before.items():
            module = sys.modules[name]
            for key in list(vars(module)):
                if key not in saved and not isinstance(vars(module)[key], types.ModuleType):
                    delattr(module, key)
            for key, value in saved.items():
                if vars(module).get(key, saved) is not value:
                    setattr(module, key, value)
        assert left == [], "unpatch_client left these patched"


@pytest.fixture
def patched() -> Any:
    """prometheus_client, patched (the default collectors left out, for short outputs).

    Typed ``Any``: its names are apytheus' now, whatever prometheus_client's stubs say.
    """
    patch_client(prometheus_client, default_collectors=False)
    return prometheus_client


def run(sample: str, **names: Any) -> dict[str, Any]:
    """Execute a README sample in a namespace of its own."""
    namespace: dict[str, Any] = {"__name__": "readme_sample", **names}
    exec(textwrap.dedent(sample), namespace)
    return namespace


def value(name: str, labels: dict[str, str] | None = None) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def latest() -> str:
    """What the patched ``generate_latest()`` renders, checked to be bytes."""
    data = prometheus_client.generate_latest()
    assert isinstance(data, bytes)
    return data.decode()


def get(url: str) -> tuple[str, str]:
    """Body and content type of a GET."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode(), response.headers["Content-Type"]


# -- the README, sample by sample ---------------------------------------------------
def test_readme_quickstart_serves_the_summary_over_http(patched: Any) -> None:
    ns = run(
        """
        from prometheus_client import start_http_server, Summary
        import random
        import time

        # Create a metric to track time spent and requests made.
        REQUEST_TIME = Summary('request_processing_seconds', 'Time spent processing request')

        # Decorate function with metric.
        @REQUEST_TIME.time()
        def process_request(t):
            \"\"\"A dummy function that takes some time.\"\"\"
            time.sleep(t)

        if __name__ == '__main__':
            # Start up the server to expose the metrics.
            server, thread = start_http_server(0, addr='127.0.0.1')  # adapted: a free port, kept
            # Generate some requests.
            for _ in range(3):  # adapted: three requests instead of `while True`
                process_request(random.random() / 100)  # adapted: sleeps of at most 10 ms
        """,
        __name__="__main__",
    )
    server = ns["server"]
    try:
        body, content_type = get(f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()
        server.server_close()
    assert "# TYPE request_processing_seconds summary" in body
    assert "request_processing_seconds_count 3.0" in body
    assert 0 < value("request_processing_seconds_sum") < 0.1  # type: ignore[operator]
    assert content_type == PROMETHEUS_CONTENT_TYPE


def test_readme_counter_sample(patched: Any) -> None:
    ns = run("""
        from prometheus_client import Counter
        c = Counter('my_failures', 'Description of counter')
        c.inc()     # Increment by 1
        c.inc(1.6)  # Increment by given value

        @c.count_exceptions()
        def f():
            pass

        with c.count_exceptions():
            pass

        # Count only one type of exception
        with c.count_exceptions(ValueError):
            pass
    """)
    ns["f"]()
    assert isinstance(ns["c"], apytheus.Counter)
    assert "my_failures_total 2.6" in latest()


def test_readme_gauge_samples(patched: Any) -> None:
    ns = run("""
        from prometheus_client import Gauge
        g = Gauge('my_inprogress_requests', 'Description of gauge')
        g.inc()      # Increment by 1
        g.dec(10)    # Decrement by given value
        g.set(4.2)   # Set to a given value

        g.set_to_current_time()   # Set to current unixtime

        # Increment when entered, decrement when exited.
        @g.track_inprogress()
        def f():
            pass

        with g.track_inprogress():
            pass

        d = Gauge('data_objects', 'Number of objects')
        my_dict = {}
        d.set_function(lambda: len(my_dict))
    """)
    ns["f"]()
    ns["my_dict"]["key"] = "value"
    assert value("my_inprogress_requests") == pytest.approx(time.time(), abs=60)
    assert "data_objects 1.0" in latest()


def test_readme_summary_and_histogram_samples_use_prometheus_client_buckets(
    patched: Any,
) -> None:
    ns = run("""
        from prometheus_client import Summary
        s = Summary('request_latency_seconds', 'Description of summary')
        s.observe(4.7)    # Observe 4.7 (seconds in this case)

        @s.time()
        def f():
            pass

        with s.time():
            pass
    """)
    ns["f"]()
    assert value("request_latency_seconds_count") == 3.0
    REGISTRY.unregister(ns["s"])
    run("""
        from prometheus_client import Histogram
        h = Histogram('request_latency_seconds', 'Description of histogram')
        h.observe(4.7)    # Observe 4.7 (seconds in this case)

        @h.time()
        def f():
            pass

        with h.time():
            pass
    """)
    text = latest()
    assert 'request_latency_seconds_bucket{le="0.075"} 1.0' in text  # a bucket apytheus lacks
    assert 'request_latency_seconds_bucket{le="2.5"} 1.0' in text
    assert 'request_latency_seconds_bucket{le="5.0"} 2.0' in text
    assert 'request_latency_seconds_bucket{le="7.5"} 2.0' in text
    assert "request_latency_seconds_count 2.0" in text


def test_readme_info_and_enum_samples(patched: Any) -> None:
    run("""
        from prometheus_client import Info
        i = Info('my_build_version', 'Description of info')
        i.info({'version': '1.2.3', 'buildhost': 'foo@bar'})

        from prometheus_client import Enum
        e = Enum('my_task_state', 'Description of enum',
                 states=['starting', 'running', 'stopped'])
        e.state('running')
    """)
    text = latest()
    assert 'my_build_version_info{version="1.2.3",buildhost="foo@bar"} 1.0' in text
    assert 'my_task_state{my_task_state="running"} 1.0' in text
    assert 'my_task_state{my_task_state="starting"} 0.0' in text


@pytest.mark.parametrize(
    "sample",
    [
        """
        from prometheus_client import Counter
        c = Counter('my_requests_total', 'HTTP Failures', ['method', 'endpoint'])
        c.labels('get', '/').inc()
        c.labels('post', '/submit').inc()
        """,
        """
        from prometheus_client import Counter
        c = Counter('my_requests_total', 'HTTP Failures', ['method', 'endpoint'])
        c.labels(method='get', endpoint='/').inc()
        c.labels(method='post', endpoint='/submit').inc()
        """,
    ],
    ids=["positional", "keywords"],
)
def test_readme_label_samples(patched: Any, sample: str) -> None:
    run(sample)
    text = latest()
    assert "# TYPE my_requests_total counter" in text
    assert 'my_requests_total{method="get",endpoint="/"} 1.0' in text
    assert 'my_requests_total{method="post",endpoint="/submit"} 1.0' in text


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="process metrics read /proc (Linux)")
def test_readme_process_collector_sample_with_a_namespace(patched: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"  # adapted: not /var/run/daemon.pid
    pid_file.write_text(f"{os.getpid()}\n")
    run(
        """
        from prometheus_client import ProcessCollector
        # adapted: read with Path, as `open(...).read()` leaves the file open (a ResourceWarning)
        ProcessCollector(namespace='mydaemon', pid=lambda: Path(PID_FILE).read_text())
        """,
        PID_FILE=str(pid_file),
        Path=Path,
    )
    assert (value("mydaemon_process_start_time_seconds") or 0) > 0
    assert "mydaemon_process_resident_memory_bytes " in latest()


@pytest.mark.parametrize("function", ["start_http_server", "start_wsgi_server"])
def test_readme_start_http_server_samples(patched: Any, function: str) -> None:
    ns = run(f"""
        from prometheus_client import {function}
        from prometheus_client import Counter
        Counter('served', 'Served').inc()

        server, thread = {function}(0, addr='127.0.0.1')  # adapted: a free port, kept
    """)
    server = ns["server"]
    try:
        body, _ = get(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert "served_total 1.0" in body


def test_readme_wsgi_sample(patched: Any) -> None:
    prometheus_client.Counter("wsgi_served", "Served").inc()
    ns = run("""
        from prometheus_client import make_wsgi_app
        from wsgiref.simple_server import make_server

        app = make_wsgi_app()
        httpd = make_server('127.0.0.1', 0, app)  # adapted: a free port
        # adapted: served from a thread instead of `httpd.serve_forever()`
        import threading
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
    """)
    httpd = ns["httpd"]
    try:
        body, content_type = get(f"http://127.0.0.1:{httpd.server_port}/")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "wsgi_served_total 1.0" in body
    assert content_type == PROMETHEUS_CONTENT_TYPE


async def test_readme_asgi_sample_negotiates_openmetrics(patched: Any) -> None:
    prometheus_client.Counter("asgi_served", "Served").inc()
    ns = run("""
        from prometheus_client import make_asgi_app
        app = make_asgi_app()
    """)
    transport = httpx.ASGITransport(app=ns["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        text = await client.get("/metrics")
        om = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert "asgi_served_total 1.0" in text.text
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert "# TYPE asgi_served counter" in om.text
    assert om.text.endswith("# EOF\n")


def test_readme_flask_sample(patched: Any) -> None:
    werkzeug_test = pytest.importorskip("werkzeug.test")
    pytest.importorskip("flask")
    prometheus_client.Counter("flask_served", "Served").inc()
    ns = run("""
        from flask import Flask
        from werkzeug.middleware.dispatcher import DispatcherMiddleware
        from prometheus_client import make_wsgi_app

        # Create my app
        app = Flask(__name__)

        # Add prometheus wsgi middleware to route /metrics requests
        app_dispatch = DispatcherMiddleware(app, {
            '/metrics': make_wsgi_app()
        })
    """)
    response = werkzeug_test.Client(ns["app_dispatch"]).get("/metrics")
    assert response.status_code == 200
    assert "flask_served_total 1.0" in response.get_data(as_text=True)


def test_readme_textfile_sample(patched: Any, tmp_path: Path) -> None:
    path = tmp_path / "raid.prom"
    run(
        """
        from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

        registry = CollectorRegistry()
        g = Gauge('raid_status', '1 if raid array is okay', registry=registry)
        g.set(1)
        write_to_textfile(PATH, registry)  # adapted: a temporary path
        """,
        PATH=str(path),
    )
    assert path.read_text() == (
        "# HELP raid_status 1 if raid array is okay\n# TYPE raid_status gauge\nraid_status 1.0\n"
    )


class Gateway:
    """A stand-in Pushgateway: records each request and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gateway.requests.append((self.command, self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST = do_DELETE = handle_any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    found = Gateway()
    try:
        yield found
    finally:
        found.close()


def test_readme_pushgateway_samples(patched: Any, gateway: Gateway) -> None:
    run(
        """
        from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

        registry = CollectorRegistry()
        g = Gauge('job_last_success_unixtime', 'Last time a batch job successfully finished', registry=registry)
        g.set_to_current_time()
        push_to_gateway(GATEWAY, job='batchA', registry=registry)  # adapted: not localhost:9091

        from prometheus_client.exposition import basic_auth_handler

        def my_auth_handler(url, method, timeout, headers, data):
            username = 'foobar'
            password = 'secret123'
            return basic_auth_handler(url, method, timeout, headers, data, username, password)
        push_to_gateway(GATEWAY, job='batchA', registry=registry, handler=my_auth_handler)
        """,  # noqa: E501
        GATEWAY=gateway.address,
    )
    (m1, path1, headers1, body1), (m2, path2, headers2, body2) = gateway.requests
    assert (m1, path1, m2, path2) == ("PUT", "/metrics/job/batchA", "PUT", "/metrics/job/batchA")
    assert headers1["Content-Type"] == PROMETHEUS_CONTENT_TYPE
    assert b"\njob_last_success_unixtime 1" in body1 and body1 == body2
    assert "Authorization" not in headers1
    assert headers2["Authorization"] == "Basic Zm9vYmFyOnNlY3JldDEyMw=="  # foobar:secret123


def test_push_compression_and_the_other_gateway_calls(patched: Any, gateway: Gateway) -> None:
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("pushed", "Pushed", registry=registry).inc()
    prometheus_client.pushadd_to_gateway(
        gateway.address, "job", registry, {"instance": "a"}, compression="gzip"
    )
    prometheus_client.delete_from_gateway(gateway.address, job="job")
    (method, path, headers, body), delete = gateway.requests
    assert (method, path) == ("POST", "/metrics/job/job/instance/a")
    assert headers["Content-Encoding"] == "gzip"
    assert b"pushed_total 1.0" in gzip.decompress(body)
    assert delete[:2] == ("DELETE", "/metrics/job/job")
    with pytest.raises(ValueError, match="snappy"):
        prometheus_client.push_to_gateway(gateway.address, "job", registry, compression="snappy")


def test_readme_custom_collector_sample_is_exposed_in_both_formats(
    patched: Any,
) -> None:
    run("""
        from prometheus_client.core import GaugeMetricFamily, CounterMetricFamily, REGISTRY

        class CustomCollector(object):
            def collect(self):
                yield GaugeMetricFamily('my_gauge', 'Help text', value=7)
                c = CounterMetricFamily('my_counter_total', 'Help text', labels=['foo'])
                c.add_metric(['bar'], 1.7)
                c.add_metric(['baz'], 3.8)
                yield c

        REGISTRY.register(CustomCollector())
    """)
    assert latest() == (
        "# HELP my_gauge Help text\n"
        "# TYPE my_gauge gauge\n"
        "my_gauge 7.0\n"
        "# HELP my_counter_total Help text\n"
        "# TYPE my_counter_total counter\n"
        'my_counter_total{foo="bar"} 1.7\n'
        'my_counter_total{foo="baz"} 3.8\n'
    )
    assert "# TYPE my_counter counter\n" in generate_metrics(openmetrics=True)
    assert value("my_counter_total", {"foo": "baz"}) == 3.8


def test_readme_multiprocess_sample_on_the_redis_backend(
    patched: Any, redis_backend: RedisBackend
) -> None:
    ns = run("""
        from prometheus_client import multiprocess

        def child_exit(server, worker):
            multiprocess.mark_process_dead(worker.pid)

        from prometheus_client import generate_latest, CollectorRegistry, CONTENT_TYPE_LATEST, Gauge

        # Example gauge.
        IN_PROGRESS = Gauge("inprogress_requests", "help", multiprocess_mode='livesum')

        # Expose metrics.
        @IN_PROGRESS.track_inprogress()
        def app(environ, start_response):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            data = generate_latest(registry)
            status = '200 OK'
            response_headers = [
                ('Content-type', CONTENT_TYPE_LATEST),
                ('Content-Length', str(len(data)))
            ]
            start_response(status, response_headers)
            return iter([data])
    """)
    ns["child_exit"](None, types.SimpleNamespace(pid=12345))  # a no-op: workers have heartbeats
    answers: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(ns["app"]({}, lambda status, headers: answers.append((status, headers))))
    assert b"\ninprogress_requests 1.0\n" in body  # the request itself, read back from Redis
    assert answers == [
        ("200 OK", [("Content-type", PROMETHEUS_CONTENT_TYPE), ("Content-Length", str(len(body)))])
    ]
    assert value("inprogress_requests") == 0.0


async def test_multiprocess_collector_behind_the_asgi_app_on_redis(
    patched: Any, redis_backend: RedisBackend
) -> None:
    """The collector reads synchronously, also when the async app renders (both loops)."""
    patched.Gauge("workers_busy", "Busy", multiprocess_mode="livesum").inc()
    registry = patched.CollectorRegistry()
    patched.multiprocess.MultiProcessCollector(registry)
    patched.multiprocess.MultiProcessCollector(patched.REGISTRY)  # already shows it all
    transport = httpx.ASGITransport(app=patched.make_asgi_app(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        text = (await client.get("/metrics")).text
    assert "\nworkers_busy 1.0\n" in text
    assert [f.name for f in REGISTRY.collect()] == ["workers_busy"]  # nothing added


def test_readme_parser_sample_reads_what_the_patched_client_writes(
    patched: Any,
) -> None:
    c = prometheus_client.Counter("parsed", "Parsed", ["kind"])
    c.labels("a").inc(2)
    prometheus_client.Histogram("sizes", "Sizes", buckets=[1, 10]).observe(5)
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(latest())
        for s in family.samples
    }
    assert found[("parsed_total", (("kind", "a"),))] == 2.0
    assert found[("sizes_bucket", (("le", "10.0"),))] == 1.0
    assert found[("sizes_bucket", (("le", "1.0"),))] == 0.0


# -- the Redis backend ---------------------------------------------------------------
def test_a_patched_client_counter_lands_in_redis(
    patched: Any,
    redis_backend: RedisBackend,
    redis_server: RedisServer,
    key_prefix: str,
) -> None:
    from prometheus_client import Counter

    c = Counter("requests", "Requests", ["method", "endpoint"], namespace="shop")
    c.labels("get", "/").inc(3)
    assert redis_backend.flush_sync()
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.keys(f"*{key_prefix}|shop_requests*"), "nothing written to Redis"
    finally:
        client.close()
    other = RedisBackend({"url": redis_server.url, "key_prefix": key_prefix})  # another worker
    spec = MetricSpec("shop_requests", "counter", ("method", "endpoint"))
    try:
        found: list[Any] = other.collect([spec])[spec]
    finally:
        other.close()
    assert [(s.labels.as_dict(), s.value()) for s in found] == [
        ({"method": "get", "endpoint": "/"}, 3.0)
    ]


# -- prometheus_client's signatures ----------------------------------------------------
def test_namespace_subsystem_and_unit_are_joined_as_prometheus_client_does(
    patched: Any,
) -> None:
    pc = prometheus_client
    pc.Counter("requests_total", "R", namespace="shop", subsystem="http", unit="bytes").inc()
    pc.Gauge("temperature", "T", unit="celsius").set(1)
    pc.Histogram(name="latency_seconds", documentation="L", unit="seconds", labelnames=["a"])
    pc.Info("build_info", "B").info({"v": "1"})
    text = latest()
    assert "shop_http_requests_bytes_total 1.0" in text
    assert "temperature_celsius 1.0" in text
    assert "# TYPE latency_seconds histogram" in text
    assert 'build_info_info{v="1"} 1.0' in text
    with pytest.raises(ValueError, match="cannot have a unit"):
        pc.Info("x", "X", unit="seconds")
    with pytest.raises(ValueError, match="cannot have a unit"):
        pc.Enum("y", "Y", unit="seconds", states=["a"])
    with pytest.raises(ValueError, match="empty"):
        pc.Counter("", "Empty")


def test_labels_take_any_value_through_str_and_refuse_mixed_forms(
    patched: Any,
) -> None:
    c = prometheus_client.Counter("calls", "Calls", ["code", "user"])
    c.labels(200, None).inc()
    c.labels(code=404, user="x").inc()
    assert c.labels(200, None) is c.labels("200", "None")
    assert value("calls_total", {"code": "200", "user": "None"}) == 1.0
    assert value("calls_total", {"code": "404", "user": "x"}) == 1.0
    with pytest.raises(ValueError, match="both"):
        c.labels("1", user="x")
    with pytest.raises(ValueError):
        c.labels("only one")
    with pytest.raises(ValueError):
        c.inc()  # a metric with labels is observed through its children


def test_gauge_modes_are_prometheus_client_ones_with_its_default(patched: Any) -> None:
    Gauge = patched.Gauge
    assert Gauge("a", "A")._family.spec.mode == "all"
    assert Gauge("b", "B", multiprocess_mode="livesum")._family.spec.mode == "livesum"
    assert Gauge("c", "C", ["worker"])._family.spec.mode == "sum"  # `worker` is the app's
    for mode in ("liveall", "min", "livemin", "max", "livemax", "sum", "mostrecent"):
        Gauge(f"g_{mode}", "G", multiprocess_mode=mode)
    with pytest.raises(ValueError):
        Gauge("bad", "Bad", multiprocess_mode="average")


def test_histogram_buckets_follow_prometheus_client_rules(patched: Any) -> None:
    Histogram = prometheus_client.Histogram
    Histogram("h1", "H", buckets=["0.5", 2, float("inf")]).observe(1)
    assert value("h1_bucket", {"le": "0.5"}) == 0.0
    assert value("h1_bucket", {"le": "2.0"}) == 1.0
    with pytest.raises(ValueError, match="sorted"):
        Histogram("h2", "H", buckets=[2, 1])
    with pytest.raises(ValueError, match="two buckets"):
        Histogram("h3", "H", buckets=[])
    with pytest.raises(ValueError):
        prometheus_client.Enum("e", "E")  # no states


def test_generate_latest_returns_bytes_with_the_matching_content_type(
    patched: Any,
) -> None:
    registry = prometheus_client.CollectorRegistry(auto_describe=True)
    prometheus_client.Gauge("g", "G", registry=registry).set(2)
    data = prometheus_client.generate_latest(registry)
    assert data == b"# HELP g G\n# TYPE g gauge\ng 2.0\n"
    assert prometheus_client.CONTENT_TYPE_LATEST == PROMETHEUS_CONTENT_TYPE
    assert prometheus_client.exposition.generate_latest is prometheus_client.generate_latest


def test_registry_target_info(patched: Any) -> None:
    registry = prometheus_client.CollectorRegistry(target_info={"service": "shop"})
    assert prometheus_client.generate_latest(registry) == (
        b'# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{service="shop"} 1.0\n'  # noqa: E501
    )
    assert registry.get_target_info() == {"service": "shop"}
    registry.set_target_info(None)
    assert prometheus_client.generate_latest(registry) == b""


def test_default_collectors_are_registered_and_can_be_unregistered() -> None:
    patch_client(prometheus_client)
    text = latest()
    assert "python_info{" in text and "python_gc_collections_total{" in text
    from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, REGISTRY

    for collector in (GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR):
        REGISTRY.unregister(collector)  # a common idiom: it must not raise
    assert latest() == ""
    unpatch_client(prometheus_client)
    patch_client(prometheus_client, default_collectors=False)
    assert latest() == ""


def test_prometheus_client_integrations_left_unpatched_see_apytheus_registry(
    patched: Any,
) -> None:
    """``MetricsHandler`` binds prometheus_client's own REGISTRY; it stands for apytheus'.

    It renders with the patched ``generate_latest`` functions, text and OpenMetrics.
    """
    prometheus_client.Counter("handled", "Handled").inc()
    server = http.server.HTTPServer(("127.0.0.1", 0), prometheus_client.MetricsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        body, _ = get(url)
        accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
        with urllib.request.urlopen(urllib.request.Request(url, headers=accept)) as response:
            om = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "handled_total 1.0" in body
    assert "# TYPE handled counter\nhandled_total 1.0\n" in om and om.endswith("# EOF\n")


# aiohttp runs on asyncio only
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_prometheus_client_aiohttp_handler_serves_apytheus_metrics(
    patched: Any,
) -> None:
    pytest.importorskip("aiohttp")
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from prometheus_client.aiohttp import make_aiohttp_handler

    prometheus_client.Counter("aiohttp_served", "Served").inc()
    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler())
    async with TestClient(TestServer(app)) as client:
        text = await (await client.get("/metrics")).text()
        om = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        om_text = await om.text()
    assert "aiohttp_served_total 1.0" in text
    assert "# TYPE aiohttp_served counter" in om_text and om_text.endswith("# EOF\n")


def test_a_registry_of_prometheus_client_made_before_the_patch_is_still_rendered() -> None:
    before = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("early", "Made before the patch", registry=before).inc()
    patch_client(prometheus_client, default_collectors=False)
    text = prometheus_client.generate_latest(before).decode()
    assert "early_total 1.0" in text
    assert "early_created" not in text  # apytheus shows _created in OpenMetrics only
    with pytest.raises(TypeError, match="create registries after patch_client"):
        prometheus_client.Counter("late", "Late", registry=before)


def test_custom_collector_families_render_as_prometheus_client_renders_them() -> None:
    """Every kind of family, with escaping and sorted labels: byte for byte (no patch needed)."""
    core = importlib.import_module("prometheus_client.core")
    om = importlib.import_module("prometheus_client.openmetrics.exposition")

    class Collector:
        def collect(self) -> Iterator[Any]:
            yield core.GaugeMetricFamily("g", 'Help \\ with "quotes"\nand lines', value=7)
            c = core.CounterMetricFamily("c_total", "C", labels=["z", "a"])
            c.add_metric(["1", 'x"\\\n'], 1.5)
            yield c
            s = core.SummaryMetricFamily("s", "S", labels=["a"])
            s.add_metric(["x"], count_value=3, sum_value=4.5)
            yield s
            h = core.HistogramMetricFamily("h", "H")
            h.add_metric([], buckets=[("0.1", 1), ("1.0", 2), ("+Inf", 3)], sum_value=2.5)
            yield h
            yield core.GaugeHistogramMetricFamily("gh", "GH", [("1.0", 4), ("+Inf", 5)], 7)
            yield core.InfoMetricFamily("build", "Build", value={"version": "1", "host": "h"})
            yield core.StateSetMetricFamily("state", "State", value={"a": True, "b": False})
            yield core.UnknownMetricFamily("u", "U", value=3)

    theirs = prometheus_client.CollectorRegistry()
    theirs.register(Collector())
    ours = apytheus.CollectorRegistry()
    ours.register(Collector())
    assert generate_metrics(ours) == prometheus_client.generate_latest(theirs).decode()
    assert generate_metrics(ours, openmetrics=True) == om.generate_latest(theirs).decode()


def test_an_invalid_family_from_a_collector_is_counted_and_the_rest_served(
    patched: Any,
) -> None:
    class Broken:
        def collect(self) -> Iterator[Any]:
            yield GaugeMetricFamily("fine", "Fine", value=1)
            yield types.SimpleNamespace(name="", documentation="", type="gauge", samples=[])
            yield CounterMetricFamily("after", "After", value=2)

    prometheus_client.REGISTRY.register(Broken())
    text = latest()
    assert "fine 1.0" in text and "after_total 2.0" in text
    assert 'apytheus_collector_errors_total{collector="Broken"} 1.0' in text


# -- gaps found by running prometheus_client's own test suite -----------------------
def serve_handler(handler: Any) -> tuple[http.server.HTTPServer, str]:
    """prometheus_client's ``MetricsHandler`` (or a factory's class) on a free port."""
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


@pytest.mark.parametrize("own_registry", [False, True])
def test_metrics_handler_filters_by_name_through_restricted_registry(
    patched: Any, own_registry: bool
) -> None:
    """``?name[]=`` makes the handler call ``restricted_registry``: only those are served."""
    registry = prometheus_client.CollectorRegistry() if own_registry else prometheus_client.REGISTRY
    prometheus_client.Counter("wanted", "Wanted", registry=registry).inc()
    prometheus_client.Gauge("other", "Other", registry=registry).set(1)
    handler = (
        prometheus_client.MetricsHandler.factory(registry)
        if own_registry
        else prometheus_client.MetricsHandler
    )
    server, url = serve_handler(handler)
    try:
        body, _ = get(url + "?name[]=wanted_total")
        full, _ = get(url)
    finally:
        server.shutdown()
        server.server_close()
    assert "wanted_total 1.0" in body and "other" not in body
    assert "wanted_total 1.0" in full and "other 1.0" in full


def test_restricted_registry_is_rendered_by_generate_latest(patched: Any) -> None:
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("a", "A", registry=registry).inc()
    prometheus_client.Counter("b", "B", registry=registry).inc(2)
    text = prometheus_client.generate_latest(registry.restricted_registry(["b_total"])).decode()
    assert text == "# HELP b_total B\n# TYPE b_total counter\nb_total 2.0\n"


def test_timer_duration_and_labels_inside_the_block(patched: Any) -> None:
    registry = prometheus_client.CollectorRegistry()
    g = prometheus_client.Gauge("g", "G", ["l"], registry=registry)
    h = prometheus_client.Histogram("h", "H", ["l"], registry=registry)
    with g.time() as t:
        t.labels("foo")
    with h.time() as u:
        u.labels(l="bar")
    assert t.duration is not None and t.duration >= 0
    assert registry.get_sample_value("g", {"l": "foo"}) == t.duration
    assert registry.get_sample_value("h_sum", {"l": "bar"}) == u.duration
    assert registry.get_sample_value("h_count", {"l": "bar"}) == 1.0


def test_a_timer_whose_labels_stay_missing_raises_at_the_end_of_the_block(patched: Any) -> None:
    registry = prometheus_client.CollectorRegistry()
    g = prometheus_client.Gauge("g", "G", ["l"], registry=registry)
    with pytest.raises(ValueError, match="have no value"), g.time():
        pass
    assert registry.get_sample_value("g", {"l": "foo"}) is None


def test_remove_turns_values_into_text_as_labels_does(patched: Any) -> None:
    registry = prometheus_client.CollectorRegistry()
    c = prometheus_client.Counter("c", "C", ["a", "b"], registry=registry)
    c.labels(None, 1).inc()
    c.labels("x", 2.5).inc()
    assert registry.get_sample_value("c_total", {"a": "None", "b": "1"}) == 1.0
    c.remove(None, 1)
    c.remove("x", 2.5)
    assert registry.get_sample_value("c_total", {"a": "None", "b": "1"}) is None
    assert registry.get_sample_value("c_total", {"a": "x", "b": "2.5"}) is None


def test_duplicate_registration_raises_duplicate_timeseries(patched: Any) -> None:
    from prometheus_client.core import DuplicateTimeseries as CoreDuplicate
    from prometheus_client.registry import DuplicateTimeseries

    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("twice", "T", registry=registry)
    with pytest.raises(DuplicateTimeseries) as caught:
        prometheus_client.Gauge("twice_total", "T", registry=registry)
    assert isinstance(caught.value, CoreDuplicate) and isinstance(caught.value, ValueError)
    assert caught.value is not None and "twice_total" in caught.value.duplicates
    # the patch put apytheus' class there; mypy knows only prometheus_client's own
    assert cast(object, DuplicateTimeseries) is apytheus.exceptions.DuplicateTimeseries


def test_counter_reset_restarts_the_value_and_the_created_time(patched: Any) -> None:
    registry = prometheus_client.CollectorRegistry()
    c = prometheus_client.Counter("resets", "R", registry=registry)
    c.inc(5)
    before = registry.get_sample_value("resets_created")
    time.sleep(0.01)  # the created time must move on (the clock's resolution)
    c.reset()
    assert registry.get_sample_value("resets_total") == 0.0
    after = registry.get_sample_value("resets_created")
    assert before is not None and after is not None and after > before
    c.inc(2)
    assert registry.get_sample_value("resets_total") == 2.0


# -- patching and unpatching ---------------------------------------------------------
def test_patch_reaches_the_submodules_users_import_from(patched: Any) -> None:
    import prometheus_client.core as core
    import prometheus_client.registry as registry

    assert core.Counter is prometheus_client.Counter
    assert vars(core)["REGISTRY"] is REGISTRY and vars(registry)["REGISTRY"] is REGISTRY
    assert registry.CollectorRegistry is prometheus_client.CollectorRegistry
    assert prometheus_client.multiprocess.MultiProcessCollector.__module__.startswith("apytheus")
    assert prometheus_client.start_wsgi_server is prometheus_client.start_http_server
    assert core.GaugeMetricFamily is GaugeMetricFamily  # prometheus_client's own, kept


def test_unpatch_restores_prometheus_client_which_works_as_before() -> None:
    before = snapshot()
    patch_client(prometheus_client)
    patch_client(prometheus_client)  # a second call does nothing
    assert differences(before)
    unpatch_client(prometheus_client)
    unpatch_client(prometheus_client)  # so does a second undo
    assert differences(before) == []
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("oracle", "Oracle", registry=registry).inc()
    text = prometheus_client.generate_latest(registry).decode()
    assert "oracle_total 1.0" in text and "oracle_created" in text  # prometheus_client's own
    assert REGISTRY.collect() == []  # the default collectors left with the patch


def test_patch_works_on_any_module_with_those_names() -> None:
    fake = types.ModuleType(f"fake_client_{uuid.uuid4().hex}")
    fake.Counter = object  # type: ignore[attr-defined]
    fake.other = 1  # type: ignore[attr-defined]
    patch_client(fake, default_collectors=False)
    try:
        assert fake.Counter is not object
        assert not hasattr(fake, "Gauge")  # only names the module has are replaced
    finally:
        unpatch_client(fake)
    assert fake.Counter is object


def test_module_docstring_examples_pass() -> None:
    module = importlib.import_module("apytheus.experimental.compatibility")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_zz_prometheus_client_is_unpatched_after_this_file() -> None:
    """Runs last in this file: the module is as this file found it at import."""
    assert differences(AT_IMPORT) == []
    assert prometheus_client.Counter.__module__ == "prometheus_client.metrics"
    assert vars(prometheus_client)["REGISTRY"] is not REGISTRY


# -- Prometheus 3: UTF-8 names, escaping, units, legacy validation ---------------------
def test_patched_client_writes_utf8_names_under_the_escaping_asked_for(patched: Any) -> None:
    from prometheus_client import validation
    from prometheus_client.exposition import choose_encoder

    c = patched.Counter("http.requests", "Requests", ["http.method"], unit="seconds")
    c.labels("GET").inc()
    assert 'http_requests_seconds_total{http_method="GET"} 1.0' in latest()
    utf8 = patched.generate_latest(escaping="allow-utf-8").decode()
    assert '{"http.requests_seconds_total","http.method"="GET"} 1.0' in utf8
    # prometheus_client's own negotiation (its MetricsHandler, Django and Twisted views)
    encoder, content_type = choose_encoder(
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8"
    )
    body = encoder(prometheus_client.REGISTRY).decode()
    assert content_type.endswith("escaping=allow-utf-8")
    assert '# UNIT "http.requests_seconds" seconds' in body
    # legacy validation, through prometheus_client's functions
    validation.enable_legacy_validation()  # type: ignore[no-untyped-call]
    try:
        assert validation.get_legacy_validation() is True
        with pytest.raises(ValueError, match="legacy"):
            patched.Gauge("queue.size", "Queue")
    finally:
        validation.disable_legacy_validation()  # type: ignore[no-untyped-call]
    patched.Gauge("queue.size", "Queue")
