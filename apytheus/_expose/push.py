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
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import anyio.to_thread

from ..registry import REGISTRY, Registry
from .formats import PROMETHEUS_CONTENT_TYPE
from .push_handlers import (
    AsyncHandler,
    Handler,
    PushgatewayError,
    abasic_auth_handler,
    adefault_handler,
    basic_auth_handler,
    default_handler,
)
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
