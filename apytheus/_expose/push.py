"""EXPOSE: hand a registry over to a Pushgateway, for batch jobs.

A job that ends before Prometheus scrapes it pushes its metrics to a
Pushgateway (`push_to_gateway`, `pushadd_to_gateway`, `delete_from_gateway`,
with async twins that use httpx). The URLs, methods and handlers are
prometheus_client's, so its custom handlers work here too. (The other way out
for a batch job, a file for the node exporter, is in ``textfile.py``.)
"""

from __future__ import annotations

import base64
import inspect
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import anyio.to_thread

from ..registry import REGISTRY, Registry
from .formats import PROMETHEUS_CONTENT_TYPE
from .render import agenerate_metrics, generate_metrics

__all__ = [
    "AsyncHandler",
    "Handler",
    "PushgatewayError",
    "abasic_auth_handler",
    "adefault_handler",
    "adelete_from_gateway",
    "apush_to_gateway",
    "apushadd_to_gateway",
    "basic_auth_handler",
    "default_handler",
    "delete_from_gateway",
    "push_to_gateway",
    "pushadd_to_gateway",
]

Headers = list[tuple[str, str]]


class Handler(Protocol):
    """Performs one request to the gateway (prometheus_client's handler signature).

    Called with keyword arguments; returns a callable that sends the request
    when called and raises (an `OSError`, say) when it fails.
    """

    def __call__(
        self, url: str, method: str, timeout: float | None, headers: Headers, data: bytes
    ) -> Callable[[], None]: ...


class AsyncHandler(Protocol):
    """Like `Handler`, but the returned callable is an ``async def`` function."""

    def __call__(
        self, url: str, method: str, timeout: float | None, headers: Headers, data: bytes
    ) -> Callable[[], Awaitable[None]]: ...


class PushgatewayError(OSError):
    """The Pushgateway answered with a status other than 2xx.

    An `OSError`, as the errors of prometheus_client's handlers are, so code
    that catches those keeps working.

    Attributes:
        method: the HTTP method of the request.
        url: the URL of the request.
        status: the HTTP status code of the answer.
        body: the body of the answer (the gateway says there what is wrong).
    """

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        shown = body.strip()
        shown = shown if len(shown) <= 500 else shown[:500] + " [...]"
        super().__init__(f"{method} {url}: the Pushgateway answered {status}: {shown}")
        self.method = method
        self.url = url
        self.status = status
        self.body = body

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the arguments of ``__init__`` (an exception crossing processes)."""
        return type(self), (self.method, self.url, self.status, self.body)


def default_handler(
    url: str, method: str, timeout: float | None, headers: Headers, data: bytes
) -> Callable[[], None]:
    """The handler the sync calls use: one HTTP(S) request with the standard library.

    Redirects are not followed (urllib would turn a redirected ``POST`` into a
    ``GET`` without its body): point ``gateway`` at the address that answers.
    Write your own handler by wrapping this one, as `basic_auth_handler` does.

    Args:
        url: where to send the request.
        method: ``PUT``, ``POST`` or ``DELETE``.
        timeout: seconds to wait for the gateway (None: wait forever).
        headers: ``(name, value)`` pairs to send.
        data: the request body.

    Returns:
        A callable that sends the request (blocking) and raises `PushgatewayError`
        when the gateway answers with a status other than 2xx, or `OSError` when
        it cannot be reached.
    """

    def handle() -> None:
        _send(url, method, timeout, headers, data)

    return handle


def basic_auth_handler(
    url: str,
    method: str,
    timeout: float | None,
    headers: Headers,
    data: bytes,
    username: str | None = None,
    password: str | None = None,
) -> Callable[[], None]:
    """`default_handler` with HTTP Basic authentication (when both credentials are given).

    Bind the credentials to pass it as ``handler``, with `functools.partial`
    or a function of your own.

    Examples:
        >>> import functools
        >>> from apytheus.exposition import basic_auth_handler, push_to_gateway
        >>> auth = functools.partial(basic_auth_handler, username="ci", password="s3cret")
        >>> push_to_gateway("pushgateway:9091", job="backup", handler=auth)  # doctest: +SKIP
    """
    return default_handler(
        url, method, timeout, _with_basic_auth(headers, username, password), data
    )


def adefault_handler(
    url: str, method: str, timeout: float | None, headers: Headers, data: bytes
) -> Callable[[], Awaitable[None]]:
    """The handler the async calls use: one request with httpx (asyncio and trio).

    As `default_handler`, but the returned function is ``async def``; it raises
    `PushgatewayError` for a status other than 2xx and `OSError` (`TimeoutError`
    on a timeout) when the gateway cannot be reached. Redirects are not followed.

    Raises:
        ImportError: httpx is not installed.
    """
    try:
        import httpx  # only the async calls need it
    except ImportError as exc:
        raise ImportError(
            "the async Pushgateway calls (apush_to_gateway, ...) send with httpx, which is "
            "not installed: pip install 'apytheus[push]' (or pass a sync handler, run in a thread)"
        ) from exc

    async def handle() -> None:
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.request(method, url, content=data, headers=headers)
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"{method} {url}: no answer within {timeout} s") from exc
        except httpx.TransportError as exc:
            raise OSError(f"{method} {url}: cannot reach the Pushgateway: {exc!r}") from exc
        if not response.is_success:
            raise PushgatewayError(method, url, response.status_code, response.text)

    return handle


def abasic_auth_handler(
    url: str,
    method: str,
    timeout: float | None,
    headers: Headers,
    data: bytes,
    username: str | None = None,
    password: str | None = None,
) -> Callable[[], Awaitable[None]]:
    """`adefault_handler` with HTTP Basic authentication (when both credentials are given).

    Examples:
        >>> import functools
        >>> from apytheus.exposition import abasic_auth_handler, apush_to_gateway
        >>> auth = functools.partial(abasic_auth_handler, username="ci", password="s3cret")
        >>> await apush_to_gateway("pushgateway:9091", job="backup", handler=auth)  # doctest: +SKIP
    """
    return adefault_handler(
        url, method, timeout, _with_basic_auth(headers, username, password), data
    )


def push_to_gateway(
    gateway: str,
    job: str,
    registry: Registry = REGISTRY,
    grouping_key: Mapping[str, Any] | None = None,
    timeout: float | None = 30,
    handler: Handler = default_handler,
) -> None:
    """Replace the gateway's metrics of a group with those of ``registry`` (``PUT``; blocking).

    The group is ``job`` plus ``grouping_key``: every metric the gateway holds
    for it is dropped, then the registry's metrics (text format 0.0.4) stored.

    Args:
        gateway: ``host:port`` (then ``http://`` is used) or a URL such as
            ``https://pushgateway.example.com``, path prefix included.
        job: the ``job`` label of the group.
        registry: what to push.
        grouping_key: the other labels of the group, such as ``{"instance": host}``.
            Values are turned into strings; values that are empty or contain ``/``
            or a space are sent base64-encoded, as the gateway requires.
        timeout: seconds to wait for the gateway (None: wait forever).
        handler: performs the request; see `default_handler` and `basic_auth_handler`.

    Raises:
        PushgatewayError: the gateway answered with a status other than 2xx.
        OSError: the gateway cannot be reached.

    Examples:
        >>> from apytheus import CollectorRegistry, Gauge, push_to_gateway
        >>> registry = CollectorRegistry()
        >>> Gauge("backup_last_success_unixtime", "Last good backup", registry=registry).set(1)
        >>> push_to_gateway("localhost:9091", job="backup", registry=registry)  # doctest: +SKIP
    """
    _use_gateway("PUT", gateway, job, registry, grouping_key, timeout, handler)


def pushadd_to_gateway(
    gateway: str,
    job: str,
    registry: Registry = REGISTRY,
    grouping_key: Mapping[str, Any] | None = None,
    timeout: float | None = 30,
    handler: Handler = default_handler,
) -> None:
    """Push ``registry`` to a group, keeping the group's other metrics (``POST``; blocking).

    Only the metrics with the names of those pushed are replaced. The arguments
    and errors are those of `push_to_gateway`.
    """
    _use_gateway("POST", gateway, job, registry, grouping_key, timeout, handler)


def delete_from_gateway(
    gateway: str,
    job: str,
    grouping_key: Mapping[str, Any] | None = None,
    timeout: float | None = 30,
    handler: Handler = default_handler,
) -> None:
    """Delete every metric of a group from the gateway (``DELETE``; blocking).

    The arguments and errors are those of `push_to_gateway`. Deleting a group
    that does not exist succeeds.
    """
    _use_gateway("DELETE", gateway, job, None, grouping_key, timeout, handler)


async def apush_to_gateway(
    gateway: str,
    job: str,
    registry: Registry = REGISTRY,
    grouping_key: Mapping[str, Any] | None = None,
    timeout: float | None = 30,  # noqa: ASYNC109 - prometheus_client's per-request timeout
    handler: Handler | AsyncHandler = adefault_handler,
) -> None:
    """`push_to_gateway` for async code: does not block the event loop (asyncio or trio).

    Renders with `agenerate_metrics` and sends with `adefault_handler` (httpx). A
    ``handler`` returning an ``async def`` function is awaited; any other handler,
    such as `basic_auth_handler` or one written for prometheus_client, runs in a
    worker thread.

    Raises:
        PushgatewayError: the gateway answered with a status other than 2xx.
        OSError: the gateway cannot be reached.
        ImportError: the default handler needs httpx, which is not installed.

    Examples:
        >>> from apytheus import Counter
        >>> from apytheus.exposition import apush_to_gateway
        >>> Counter("rows_loaded", "Rows loaded").inc(1200)
        >>> await apush_to_gateway("localhost:9091", job="etl")  # doctest: +SKIP
    """
    await _ause_gateway("PUT", gateway, job, registry, grouping_key, timeout, handler)


async def apushadd_to_gateway(
    gateway: str,
    job: str,
    registry: Registry = REGISTRY,
    grouping_key: Mapping[str, Any] | None = None,
    timeout: float | None = 30,  # noqa: ASYNC109 - prometheus_client's per-request timeout
    handler: Handler | AsyncHandler = adefault_handler,
) -> None:
    """`pushadd_to_gateway` for async code (``POST``; see `apush_to_gateway`)."""
    await _ause_gateway("POST", gateway, job, registry, grouping_key, timeout, handler)


async def adelete_from_gateway(
    gateway: str,
    job: str,
    grouping_key: Mapping[str, Any] | None = None,
    timeout: float | None = 30,  # noqa: ASYNC109 - prometheus_client's per-request timeout
    handler: Handler | AsyncHandler = adefault_handler,
) -> None:
    """`delete_from_gateway` for async code (``DELETE``; see `apush_to_gateway`)."""
    await _ause_gateway("DELETE", gateway, job, None, grouping_key, timeout, handler)


def _use_gateway(
    method: str,
    gateway: str,
    job: str,
    registry: Registry | None,
    grouping_key: Mapping[str, Any] | None,
    timeout: float | None,
    handler: Handler,
) -> None:

    url = _gateway_url(gateway, job, grouping_key)
    data = b"" if registry is None else generate_metrics(registry).encode()
    headers = [("Content-Type", PROMETHEUS_CONTENT_TYPE)]
    handler(url=url, method=method, timeout=timeout, headers=headers, data=data)()


async def _ause_gateway(
    method: str,
    gateway: str,
    job: str,
    registry: Registry | None,
    grouping_key: Mapping[str, Any] | None,
    timeout: float | None,  # noqa: ASYNC109 - passed on to the handler
    handler: Handler | AsyncHandler,
) -> None:

    url = _gateway_url(gateway, job, grouping_key)
    data = b"" if registry is None else (await agenerate_metrics(registry)).encode()
    headers = [("Content-Type", PROMETHEUS_CONTENT_TYPE)]
    send: Callable[[], object] = handler(
        url=url, method=method, timeout=timeout, headers=headers, data=data
    )
    if inspect.iscoroutinefunction(send):
        await send()
        return
    # A sync handler blocks on its I/O; a callable returning an awaitable is awaited here.
    result = await anyio.to_thread.run_sync(send)
    if inspect.isawaitable(result):
        await result


def _gateway_url(gateway: str, job: str, grouping_key: Mapping[str, Any] | None = None) -> str:
    """The URL of a group: ``<gateway>/metrics/job/<job>{/<label>/<value>}`` (sorted labels)."""
    if urlsplit(gateway).scheme not in ("http", "https"):
        gateway = f"http://{gateway}"
    labels = sorted((str(k), str(v)) for k, v in (grouping_key or {}).items())
    return (
        gateway.rstrip("/")
        + "/metrics"
        + "".join(_segment(k, v) for k, v in [("job", job), *labels])
    )


def _segment(name: str, value: str) -> str:
    """One ``/<label>/<value>`` of a group URL, base64 where the gateway needs it."""
    if value == "":  # a path segment cannot be empty: the gateway reads "=" as base64 of ""
        return f"/{name}@base64/="
    if "/" in value or " " in value:  # "/" would split the path; "+" would not read as a space
        return f"/{name}@base64/{base64.urlsafe_b64encode(value.encode()).decode()}"
    return f"/{name}/{quote(value, safe='')}"


def _with_basic_auth(headers: Headers, username: str | None, password: str | None) -> Headers:
    """``headers`` plus an ``Authorization: Basic`` header when both credentials are set."""
    if username is None or password is None:
        return headers
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return [*headers, ("Authorization", f"Basic {token}")]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answer a redirect with an error: urllib would resend a POST as a bodiless GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _send(url: str, method: str, timeout: float | None, headers: Headers, data: bytes) -> None:
    """Send one request with urllib; a status other than 2xx raises `PushgatewayError`."""
    request = urllib.request.Request(url, data=data, method=method)
    for name, value in headers:
        request.add_header(name, value)
    try:
        opener = urllib.request.build_opener(_NoRedirect)  # proxies from the environment now
        with opener.open(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the connection open until closed
            status, body = exc.code, exc.read()
    if not 200 <= status < 300:
        raise PushgatewayError(method, url, status, body.decode("utf-8", "replace"))
