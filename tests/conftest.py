"""Shared fixtures: both event loops, a fresh registry per test, external tools."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

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
