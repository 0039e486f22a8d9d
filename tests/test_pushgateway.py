"""Pushing to a real prometheus-pushgateway: push, pushadd, delete, grouping keys, basic auth.

The gateways run as processes on free ports, without persistence, for the whole module;
each test pushes under a job name of its own, with metric names of its own (a registry
prefix: the gateway checks that a metric name has one type across all groups). What a
test pushed is read back from the gateway's ``/api/v1/metrics``.
"""

from __future__ import annotations

import base64
import functools
import importlib
import json
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import prometheus_client
import prometheus_client.exposition
import pytest
from conftest import require_tool

from apytheus import Counter, Gauge, delete_from_gateway, push_to_gateway, pushadd_to_gateway
from apytheus.exposition import (
    PROMETHEUS_CONTENT_TYPE,
    PushgatewayError,
    abasic_auth_handler,
    adelete_from_gateway,
    apush_to_gateway,
    apushadd_to_gateway,
    basic_auth_handler,
)
from apytheus.registry import CollectorRegistry

Group = tuple[tuple[str, str], ...]  # the grouping labels other than job, sorted
USER, PASSWORD = "pusher", "correct horse battery staple"


def group(**labels: str) -> Group:
    return tuple(sorted(labels.items()))


class Pushgateway:
    """One prometheus-pushgateway on 127.0.0.1:<port>, metrics in memory only."""

    def __init__(self, binary: str, port: int, workdir: Path, web_config: str | None = None):
        self.port = port
        self.log = workdir / "pushgateway.log"
        self.args = [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
        if web_config is not None:
            config = workdir / "web.yml"
            config.write_text(web_config, encoding="utf-8")
            self.args.append(f"--web.config.file={config}")
        self.process: subprocess.Popen[bytes] | None = None
        self.auth: tuple[str, str] | None = None  # what the test helpers read with

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                output = self.log.read_text(errors="replace")
                raise RuntimeError(f"pushgateway exited with {self.process.returncode}:\n{output}")
            try:
                urllib.request.urlopen(f"http://{self.address}/-/ready", timeout=1).close()
                return
            except urllib.error.HTTPError as exc:  # 401 with auth on: it answers
                exc.close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pushgateway did not answer on {self.address} in {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def groups(self, job: str) -> dict[Group, dict[str, float]]:
        """The gateway's groups of ``job``: grouping labels -> {metric name: value}."""
        request = urllib.request.Request(f"http://{self.address}/api/v1/metrics")
        if self.auth is not None:
            token = base64.b64encode(":".join(self.auth).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            data = json.load(response)["data"]
        found: dict[Group, dict[str, float]] = {}
        for entry in data:
            labels: dict[str, str] = entry["labels"]
            if labels.get("job") != job:
                continue
            values: dict[str, float] = {}
            for name, family in entry.items():
                if not isinstance(family, dict) or "metrics" not in family:
                    continue
                if name in ("push_time_seconds", "push_failure_time_seconds"):
                    continue
                [series] = family["metrics"]
                values[name.removeprefix(f"{job}_")] = float(series["value"])
            found[group(**{k: v for k, v in labels.items() if k != "job"})] = values
        return found


def bcrypt_hash(password: str) -> str | None:
    """A bcrypt hash of ``password`` made by htpasswd or the bcrypt package, if either is here."""
    htpasswd = shutil.which("htpasswd")
    if htpasswd is not None:
        command = [htpasswd, "-nbBC", "4", USER, password]  # cost 4: fast, and enough for a test
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
        return out.stdout.strip().split(":", 1)[1]
    try:
        bcrypt = importlib.import_module("bcrypt")
    except ImportError:
        return None
    return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode())


@pytest.fixture(scope="module")
def pushgateway_binary() -> str:
    return require_tool("prometheus-pushgateway", "prometheus-pushgateway")


@pytest.fixture(scope="module")
def gateway(
    pushgateway_binary: str,
    tmp_path_factory: pytest.TempPathFactory,
    free_tcp_port_factory: Callable[[], int],
) -> Iterator[Pushgateway]:
    server = Pushgateway(
        pushgateway_binary, free_tcp_port_factory(), tmp_path_factory.mktemp("pushgateway")
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def auth_gateway(
    pushgateway_binary: str,
    tmp_path_factory: pytest.TempPathFactory,
    free_tcp_port_factory: Callable[[], int],
) -> Iterator[Pushgateway]:
    """A gateway that wants HTTP Basic authentication (a bcrypt hash in its web config)."""
    hashed = bcrypt_hash(PASSWORD)
    if hashed is None:
        pytest.skip(
            "making a bcrypt hash for the gateway's web config needs htpasswd "
            "(Debian package apache2-utils) or the bcrypt package (pip install bcrypt)"
        )
    config = f"basic_auth_users:\n  {USER}: '{hashed}'\n"
    server = Pushgateway(
        pushgateway_binary,
        free_tcp_port_factory(),
        tmp_path_factory.mktemp("pushgateway-auth"),
        web_config=config,
    )
    server.auth = (USER, PASSWORD)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def job() -> str:
    """A job name of the test's own (also the prefix of its metric names)."""
    return f"test_{uuid.uuid4().hex[:10]}"


def jobs_registry(job: str, **values: float) -> CollectorRegistry:
    """A registry with a gauge per keyword (a counter for names ending in ``_total``)."""
    registry = CollectorRegistry(prefix=job)
    for name, value in values.items():
        if name.endswith("_total"):
            Counter(name, f"{name} help", registry=registry).inc(value)
        else:
            Gauge(name, f"{name} help", registry=registry).set(value)
    return registry


# --- URLs and requests, checked against prometheus_client's own -------------------------


class Recorder:
    """A handler that records the request instead of sending it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(
        self,
        url: str,
        method: str,
        timeout: float | None,
        headers: list[tuple[str, str]],
        data: bytes,
    ) -> Callable[[], None]:
        self.requests.append(
            {"url": url, "method": method, "timeout": timeout, "headers": headers, "data": data}
        )
        return lambda: None


GATEWAYS = [
    "localhost:9091",
    "127.0.0.1:9091",
    "pushgateway.example.com",
    "http://pushgateway:9091",
    "https://pushgateway.example.com/prefix/",
]
GROUPING_KEYS: list[dict[str, Any] | None] = [
    None,
    {},
    {"instance": "web-1"},
    {"zone": "b", "instance": "web-1"},
    {"path": "/var/lib/backup"},
    {"empty": ""},
    {"spaced": "a b"},
    {"odd": "ünï+%?#&="},
    {"number": 3},
]


@pytest.mark.parametrize("gateway_address", GATEWAYS)
@pytest.mark.parametrize("grouping_key", GROUPING_KEYS)
@pytest.mark.parametrize("job_name", ["batch", "nightly backup", "a/b", ""])
def test_urls_and_methods_are_those_of_prometheus_client(
    gateway_address: str, grouping_key: dict[str, Any] | None, job_name: str
) -> None:
    ours, theirs = Recorder(), Recorder()
    empty = prometheus_client.CollectorRegistry()
    for push, their_push in [
        (push_to_gateway, prometheus_client.push_to_gateway),
        (pushadd_to_gateway, prometheus_client.pushadd_to_gateway),
    ]:
        push(gateway_address, job_name, CollectorRegistry(), grouping_key, 7, ours)
        their_push(gateway_address, job_name, empty, grouping_key, 7, theirs)
    delete_from_gateway(gateway_address, job_name, grouping_key, None, ours)
    prometheus_client.delete_from_gateway(gateway_address, job_name, grouping_key, None, theirs)
    assert ours.requests == theirs.requests
    assert [r["method"] for r in ours.requests] == ["PUT", "POST", "DELETE"]


def test_the_body_is_the_text_format_with_its_content_type() -> None:
    recorder = Recorder()
    registry = jobs_registry("body", queued=3)
    push_to_gateway("localhost:9091", "batch", registry, handler=recorder)
    [request] = recorder.requests
    assert request["headers"] == [("Content-Type", PROMETHEUS_CONTENT_TYPE)]
    assert request["data"] == (
        b"# HELP body_queued queued help\n# TYPE body_queued gauge\nbody_queued 3.0\n"
    )
    assert request["timeout"] == 30


# --- a real gateway, sync ---------------------------------------------------------------


def test_push_replaces_every_metric_of_the_group(gateway: Pushgateway, job: str) -> None:
    push_to_gateway(gateway.address, job, jobs_registry(job, rows_total=3, last_run=2))
    assert gateway.groups(job) == {(): {"rows_total": 3.0, "last_run": 2.0}}
    push_to_gateway(gateway.address, job, jobs_registry(job, duration=1.5))
    assert gateway.groups(job) == {(): {"duration": 1.5}}


def test_pushadd_replaces_only_the_metrics_it_pushes(gateway: Pushgateway, job: str) -> None:
    push_to_gateway(gateway.address, job, jobs_registry(job, rows_total=3, last_run=2))
    pushadd_to_gateway(gateway.address, job, jobs_registry(job, last_run=5, duration=1.5))
    assert gateway.groups(job) == {(): {"rows_total": 3.0, "last_run": 5.0, "duration": 1.5}}


def test_delete_removes_that_group_only(gateway: Pushgateway, job: str) -> None:
    for instance in ("web-1", "web-2"):
        push_to_gateway(
            gateway.address, job, jobs_registry(job, up=1), grouping_key={"instance": instance}
        )
    assert set(gateway.groups(job)) == {group(instance="web-1"), group(instance="web-2")}
    delete_from_gateway(gateway.address, job, grouping_key={"instance": "web-1"})
    assert gateway.groups(job) == {group(instance="web-2"): {"up": 1.0}}
    delete_from_gateway(gateway.address, job, grouping_key={"instance": "web-1"})  # already gone


def test_grouping_key_values_with_slash_space_unicode_or_empty_reach_the_gateway_intact(
    gateway: Pushgateway, job: str
) -> None:
    key = {"path": "/var/lib/backup", "spaced": "a b", "odd": "ünï+%?#&=", "empty": ""}
    push_to_gateway(gateway.address, job, jobs_registry(job, up=1), grouping_key=key)
    assert gateway.groups(job) == {group(**key): {"up": 1.0}}
    delete_from_gateway(gateway.address, job, grouping_key=key)
    assert gateway.groups(job) == {}


def test_without_a_registry_the_default_registry_is_pushed(
    gateway: Pushgateway, job: str, default_registry: CollectorRegistry
) -> None:
    Gauge(f"{job}_from_default", "From REGISTRY").set(4)
    push_to_gateway(gateway.address, job)
    assert gateway.groups(job) == {(): {"from_default": 4.0}}


def test_a_gateway_url_with_a_scheme_and_a_trailing_slash_works(
    gateway: Pushgateway, job: str
) -> None:
    push_to_gateway(f"http://{gateway.address}/", job, jobs_registry(job, up=1))
    assert gateway.groups(job) == {(): {"up": 1.0}}


def test_a_refused_push_raises_with_the_status_and_the_gateways_message(
    gateway: Pushgateway, job: str
) -> None:
    with pytest.raises(PushgatewayError) as caught:
        push_to_gateway(gateway.address, job, jobs_registry(job, up=1), {"bad-name": "x"})
    assert caught.value.status == 400
    assert caught.value.method == "PUT"
    assert 'improper label name "bad-name"' in caught.value.body
    assert "400" in str(caught.value)
    assert "bad-name" in str(caught.value)
    assert isinstance(caught.value, OSError)  # what prometheus_client users catch


def test_a_metric_with_another_type_in_another_group_is_refused(
    gateway: Pushgateway, job: str
) -> None:
    """The gateway exposes all groups together, so a name keeps one type across them."""
    push_to_gateway(gateway.address, job, jobs_registry(job, rows_total=1), {"instance": "a"})
    registry = CollectorRegistry(prefix=job)
    Gauge("rows_total", "now a gauge", registry=registry).set(1)
    with pytest.raises(PushgatewayError, match="inconsistent") as caught:
        push_to_gateway(gateway.address, job, registry, {"instance": "b"})
    assert caught.value.status == 400
    groups = gateway.groups(job)
    assert groups[group(instance="a")] == {"rows_total": 1.0}
    assert groups.get(group(instance="b"), {}) == {}  # only the failure is recorded there


def test_an_unreachable_gateway_raises_oserror(
    free_tcp_port_factory: Callable[[], int], job: str
) -> None:
    with pytest.raises(OSError):
        push_to_gateway(f"127.0.0.1:{free_tcp_port_factory()}", job, CollectorRegistry())


@pytest.fixture
def redirecting(gateway: Pushgateway) -> Iterator[str]:
    """The address of a server that answers every request with a redirect to the gateway."""

    class Redirect(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.send_response(302)  # urllib would resend a POST as a GET
            self.send_header("Location", f"http://{gateway.address}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_POST = do_DELETE = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_redirect_is_an_error_not_a_push_turned_into_a_get(
    redirecting: str, gateway: Pushgateway, job: str
) -> None:
    for push in (push_to_gateway, pushadd_to_gateway):
        with pytest.raises(PushgatewayError) as caught:
            push(redirecting, job, jobs_registry(job, up=1))
        assert caught.value.status == 302
    assert gateway.groups(job) == {}


def test_the_error_survives_pickling() -> None:
    """As exceptions do when they cross a process boundary (multiprocessing, pytest-xdist)."""
    error = PushgatewayError("PUT", "http://gw/metrics/job/x", 400, "bad label")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.method, copy.url, copy.status, copy.body) == ("PUT", error.url, 400, "bad label")
    assert str(copy) == str(error)


# --- basic auth -------------------------------------------------------------------------


def test_basic_auth_handler_pushes_to_a_gateway_that_wants_a_password(
    auth_gateway: Pushgateway, job: str
) -> None:
    auth = functools.partial(basic_auth_handler, username=USER, password=PASSWORD)
    push_to_gateway(auth_gateway.address, job, jobs_registry(job, up=1), handler=auth)
    assert auth_gateway.groups(job) == {(): {"up": 1.0}}
    delete_from_gateway(auth_gateway.address, job, handler=auth)
    assert auth_gateway.groups(job) == {}


def test_a_missing_or_wrong_password_gets_401(auth_gateway: Pushgateway, job: str) -> None:
    wrong = functools.partial(basic_auth_handler, username=USER, password="wrong")
    for handler in (wrong, basic_auth_handler):  # without credentials: no header at all
        with pytest.raises(PushgatewayError) as caught:
            push_to_gateway(auth_gateway.address, job, jobs_registry(job, up=1), handler=handler)
        assert caught.value.status == 401
    assert auth_gateway.groups(job) == {}


def test_prometheus_clients_own_auth_handler_works_as_a_handler(
    auth_gateway: Pushgateway, job: str
) -> None:
    auth = functools.partial(
        prometheus_client.exposition.basic_auth_handler, username=USER, password=PASSWORD
    )
    pushadd_to_gateway(auth_gateway.address, job, jobs_registry(job, up=1), handler=auth)
    assert auth_gateway.groups(job) == {(): {"up": 1.0}}


# --- a real gateway, async (asyncio and trio) -------------------------------------------


async def test_the_async_calls_push_pushadd_and_delete(gateway: Pushgateway, job: str) -> None:
    key = {"path": "/srv/data", "empty": ""}
    await apush_to_gateway(gateway.address, job, jobs_registry(job, rows_total=3, last_run=2), key)
    assert gateway.groups(job) == {group(**key): {"rows_total": 3.0, "last_run": 2.0}}
    await apushadd_to_gateway(gateway.address, job, jobs_registry(job, last_run=5), key)
    assert gateway.groups(job) == {group(**key): {"rows_total": 3.0, "last_run": 5.0}}
    await apush_to_gateway(gateway.address, job, jobs_registry(job, duration=1.5), key)
    assert gateway.groups(job) == {group(**key): {"duration": 1.5}}
    await adelete_from_gateway(gateway.address, job, key)
    assert gateway.groups(job) == {}


async def test_async_push_uses_the_default_registry(
    gateway: Pushgateway, job: str, default_registry: CollectorRegistry
) -> None:
    Counter(f"{job}_events", "From REGISTRY").inc(2)
    await apush_to_gateway(f"http://{gateway.address}", job)
    assert gateway.groups(job) == {(): {"events_total": 2.0}}


async def test_an_async_refused_push_raises_with_the_status_and_message(
    gateway: Pushgateway, job: str
) -> None:
    with pytest.raises(PushgatewayError) as caught:
        await apush_to_gateway(gateway.address, job, jobs_registry(job, up=1), {"bad-name": "x"})
    assert caught.value.status == 400
    assert 'improper label name "bad-name"' in caught.value.body


async def test_an_async_push_to_an_unreachable_gateway_raises_oserror(
    free_tcp_port_factory: Callable[[], int], job: str
) -> None:
    with pytest.raises(OSError, match="cannot reach"):
        await apush_to_gateway(f"127.0.0.1:{free_tcp_port_factory()}", job, CollectorRegistry())


async def test_an_async_redirect_is_an_error(
    redirecting: str, gateway: Pushgateway, job: str
) -> None:
    with pytest.raises(PushgatewayError) as caught:
        await apushadd_to_gateway(redirecting, job, jobs_registry(job, up=1))
    assert caught.value.status == 302
    assert gateway.groups(job) == {}


async def test_async_basic_auth(auth_gateway: Pushgateway, job: str) -> None:
    auth = functools.partial(abasic_auth_handler, username=USER, password=PASSWORD)
    await apush_to_gateway(auth_gateway.address, job, jobs_registry(job, up=1), handler=auth)
    assert auth_gateway.groups(job) == {(): {"up": 1.0}}
    wrong = functools.partial(abasic_auth_handler, username=USER, password="wrong")
    with pytest.raises(PushgatewayError) as caught:
        await adelete_from_gateway(auth_gateway.address, job, handler=wrong)
    assert caught.value.status == 401
    await adelete_from_gateway(auth_gateway.address, job, handler=auth)
    assert auth_gateway.groups(job) == {}


async def test_a_sync_handler_given_to_an_async_call_runs_in_a_thread(
    auth_gateway: Pushgateway, job: str
) -> None:
    """Handlers written for the sync calls (or for prometheus_client) work unchanged."""
    auth = functools.partial(basic_auth_handler, username=USER, password=PASSWORD)
    await apushadd_to_gateway(auth_gateway.address, job, jobs_registry(job, up=1), handler=auth)
    assert auth_gateway.groups(job) == {(): {"up": 1.0}}


async def test_without_httpx_the_async_calls_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, job: str
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)  # makes `import httpx` fail
    with pytest.raises(ImportError, match=r"pip install 'apytheus\[push\]'"):
        await apush_to_gateway("127.0.0.1:9", job, CollectorRegistry())
