"""apytheus.lifespan and the ASGI lifespan driver: the backend's work starts and ends with the app.

One driver serves `make_asgi_app` (an app with nothing of its own to start)
and `MetricsMiddleware` (around the wrapped app's lifespan). These tests use a
backend of the test's own that records what its lifespan does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import apytheus
from apytheus import CollectorRegistry, make_asgi_app
from apytheus.backends import InProcessBackend, load_backend
from apytheus.middleware import MetricsMiddleware

Message = dict[str, Any]


class RecordingBackend(InProcessBackend):
    """The in-process backend, with a lifespan that logs its steps (and may fail)."""

    events: list[str] = []
    fail_at: str | None = None

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        return self._run()

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        if self.fail_at == "start":
            raise RuntimeError("cannot start: bad credentials")
        self.events.append("started")
        try:
            yield
        finally:
            self.events.append("last flush")
            if self.fail_at == "stop":
                raise RuntimeError("the last flush failed")

    def __repr__(self) -> str:
        return "RecordingBackend()"


@pytest.fixture
def backend() -> Any:
    RecordingBackend.events = []
    RecordingBackend.fail_at = None
    found = load_backend(RecordingBackend)
    yield found
    load_backend(InProcessBackend)


async def drive(app: Any, sent: list[Message], *, flushed_at: list[int] | None = None) -> None:
    """Send startup then shutdown; note how many backend events there were at each reply."""
    incoming: list[Mapping[str, str]] = [
        {"type": "lifespan.startup"},
        {"type": "lifespan.shutdown"},
    ]

    async def receive() -> Mapping[str, str]:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)
        if flushed_at is not None:
            flushed_at.append(len(RecordingBackend.events))

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)


def inner_app() -> Starlette:
    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("hi")

    return Starlette(routes=[Route("/", hello)])


@pytest.mark.parametrize("kind", ["metrics app", "middleware"])
async def test_the_backend_starts_with_the_app_and_flushes_before_shutdown_completes(
    backend: Any, kind: str
) -> None:
    app = (
        make_asgi_app(CollectorRegistry())
        if kind == "metrics app"
        else MetricsMiddleware(inner_app(), registry=CollectorRegistry())
    )
    sent: list[Message] = []
    flushed_at: list[int] = []
    await drive(app, sent, flushed_at=flushed_at)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert RecordingBackend.events == ["started", "last flush"]
    assert flushed_at == [1, 2]  # the last flush happened before shutdown.complete was sent


@pytest.mark.parametrize("kind", ["metrics app", "middleware"])
async def test_a_backend_that_cannot_start_fails_the_startup(backend: Any, kind: str) -> None:
    RecordingBackend.fail_at = "start"
    app = (
        make_asgi_app(CollectorRegistry())
        if kind == "metrics app"
        else MetricsMiddleware(inner_app(), registry=CollectorRegistry())
    )
    sent: list[Message] = []
    await drive(app, sent)
    assert sent == [{"type": "lifespan.startup.failed", "message": "cannot start: bad credentials"}]


@pytest.mark.parametrize("kind", ["metrics app", "middleware"])
async def test_a_failing_last_flush_is_reported_as_a_failed_shutdown(
    backend: Any, kind: str
) -> None:
    RecordingBackend.fail_at = "stop"
    app = (
        make_asgi_app(CollectorRegistry())
        if kind == "metrics app"
        else MetricsMiddleware(inner_app(), registry=CollectorRegistry())
    )
    sent: list[Message] = []
    await drive(app, sent)
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.failed", "message": "the last flush failed"},
    ]


async def test_lifespan_fits_starlettes_lifespan_hook(backend: Any) -> None:
    app = Starlette(routes=inner_app().routes, lifespan=apytheus.lifespan)
    sent: list[Message] = []
    await drive(app, sent)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert RecordingBackend.events == ["started", "last flush"]


async def test_lifespan_as_a_context_manager_anywhere(backend: Any) -> None:
    async with apytheus.lifespan():
        assert RecordingBackend.events == ["started"]
    assert RecordingBackend.events == ["started", "last flush"]


async def test_requests_pass_through_while_the_backend_runs(backend: Any) -> None:
    app = MetricsMiddleware(inner_app(), registry=CollectorRegistry())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/")).text == "hi"


async def test_an_app_without_lifespans_still_gets_the_backends_lifespan(backend: Any) -> None:
    """Django's ASGI handler raises on a lifespan scope: the middleware answers for it."""

    async def http_only(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError(f"can only handle http, not {scope['type']}")  # as Django does

    sent: list[Message] = []
    flushed_at: list[int] = []
    await drive(MetricsMiddleware(http_only, registry=None), sent, flushed_at=flushed_at)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert RecordingBackend.events == ["started", "last flush"]
    assert flushed_at == [1, 2]


async def test_an_app_whose_startup_fails_after_reading_it_still_fails(backend: Any) -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("the app's own startup failed")

    with pytest.raises(RuntimeError, match="own startup failed"):
        await drive(MetricsMiddleware(failing, registry=None), [])
    assert RecordingBackend.events == ["started", "last flush"]
