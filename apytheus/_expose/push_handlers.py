"""EXPOSE: how a push travels: handlers (prometheus_client's signature), urllib and httpx.

A handler is called with the request's URL, method, timeout, headers and body
and returns the callable that sends it. prometheus_client's own handlers (its
``basic_auth_handler``, say) have the same shape and work too.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

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
