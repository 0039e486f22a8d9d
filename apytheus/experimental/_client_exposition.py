"""prometheus_client's exposition functions over apytheus': render, serve, write, push.

`apytheus.experimental.compatibility.patch_client` puts each function of this
module in place of prometheus_client's function of the same name (and
`generate_latest_openmetrics` in place of its OpenMetrics ``generate_latest``).
A registry of prometheus_client's own is accepted where one is expected. So is
its multiprocess mode's API, which the Redis backend makes unneeded.
"""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import ThreadingHTTPServer
from typing import Any

from .. import exposition
from .._collect.read import collect_sync
from .._expose.asgi import ASGIApp, Receive, Scope, Send
from .._expose.push_handlers import Handler, default_handler
from .._samples import MetricFamily
from ..registry import REGISTRY
from ._client_metrics import as_registry, metric_registry


# -- exposition -----------------------------------------------------------
def generate_latest(registry: object = REGISTRY, escaping: str = "underscores") -> bytes:
    """Text format 0.0.4 of ``registry``, as UTF-8 bytes, names under ``escaping`` (blocking)."""
    return exposition.generate_metrics(as_registry(registry), escaping=escaping).encode()


def generate_latest_openmetrics(
    registry: object = REGISTRY, escaping: str = "underscores", version: str = "1.0.0"
) -> bytes:
    """OpenMetrics 1.0.0 of ``registry``, as UTF-8 bytes, names under ``escaping`` (blocking)."""
    registry = as_registry(registry)
    return exposition.generate_metrics(registry, openmetrics=True, escaping=escaping).encode()


def make_wsgi_app(
    registry: object = REGISTRY, disable_compression: bool = False
) -> Callable[..., Iterable[bytes]]:
    """apytheus' WSGI app; ``disable_compression`` ignores ``Accept-Encoding``."""
    app = exposition.make_wsgi_app(as_registry(registry))
    if not disable_compression:
        return app

    def uncompressed(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        environ = {k: v for k, v in environ.items() if k != "HTTP_ACCEPT_ENCODING"}
        return app(environ, start_response)

    return uncompressed


def make_asgi_app(registry: object = REGISTRY, disable_compression: bool = False) -> ASGIApp:
    """apytheus' ASGI app; ``disable_compression`` ignores ``Accept-Encoding``."""
    app = exposition.make_asgi_app(as_registry(registry))
    if not disable_compression:
        return app

    async def uncompressed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            headers = [
                (k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept-encoding"
            ]
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return uncompressed


def start_http_server(
    port: int,
    addr: str = "0.0.0.0",
    registry: object = REGISTRY,
    certfile: str | None = None,
    keyfile: str | None = None,
    **tls_options: Any,
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """apytheus' metrics server in a daemon thread (also ``start_wsgi_server``).

    Raises:
        NotImplementedError: TLS was asked for (``certfile``, ``keyfile``):
            terminate TLS in a proxy in front of it.
    """
    if certfile or keyfile:
        raise NotImplementedError(
            "apytheus' start_http_server has no TLS: serve it behind a TLS-terminating proxy"
        )
    return exposition.start_http_server(port, addr, as_registry(registry))


def write_to_textfile(
    path: str, registry: object, escaping: str = "allow-utf-8", tmpdir: str | None = None
) -> None:
    """Write ``registry`` to ``path`` atomically (``tmpdir``: where the temporary file goes)."""
    if tmpdir is None:
        exposition.write_to_textfile(path, as_registry(registry), escaping)
        return
    temporary = os.path.join(tmpdir, f"{os.path.basename(path)}.{os.getpid()}")
    try:
        exposition.write_to_textfile(temporary, as_registry(registry), escaping)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _compressed(handler: Handler, compression: str | None) -> Handler:
    """``handler`` sending a gzip body (``compression="gzip"``)."""
    if compression is None:
        return handler
    if compression != "gzip":
        raise ValueError(f"compression {compression!r} is not supported by apytheus; use 'gzip'")

    def gzip_handler(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        headers = [*headers, ("Content-Encoding", "gzip")]
        return handler(
            url=url, method=method, timeout=timeout, headers=headers, data=gzip.compress(data)
        )

    return gzip_handler


def push_to_gateway(
    gateway: str,
    job: str,
    registry: object,
    grouping_key: Mapping[str, Any] | None = None,
    timeout: float | None = 30,
    handler: Handler = default_handler,
    compression: str | None = None,
) -> None:
    """Replace a group's metrics on a Pushgateway with ``registry`` (``PUT``; blocking)."""
    exposition.push_to_gateway(
        gateway,
        job,
        as_registry(registry),
        grouping_key,
        timeout,
        _compressed(handler, compression),
    )


def pushadd_to_gateway(
    gateway: str,
    job: str,
    registry: object,
    grouping_key: Mapping[str, Any] | None = None,
    timeout: float | None = 30,
    handler: Handler = default_handler,
    compression: str | None = None,
) -> None:
    """Push ``registry`` to a group, keeping its other metrics (``POST``; blocking)."""
    exposition.pushadd_to_gateway(
        gateway,
        job,
        as_registry(registry),
        grouping_key,
        timeout,
        _compressed(handler, compression),
    )


def delete_from_gateway(
    gateway: str,
    job: str,
    grouping_key: Mapping[str, Any] | None = None,
    timeout: float | None = 30,
    handler: Handler = default_handler,
) -> None:
    """Delete a group's metrics from a Pushgateway (``DELETE``; blocking)."""
    exposition.delete_from_gateway(gateway, job, grouping_key, timeout, handler)


# -- multiprocess ---------------------------------------------------------
class MultiProcessCollector:
    """Stands for prometheus_client's: exposes the default registry in ``registry``.

    With prometheus_client, a fresh registry plus this collector shows what
    every process recorded. apytheus' default registry already does that on
    a shared backend (Redis), so this collector shows its families. ``path``
    is ignored. It collects synchronously, as the WSGI apps it is made for.
    """

    def __init__(self, registry: object, path: str | None = None) -> None:
        target = metric_registry(registry)
        # the default registry itself already shows every metric: nothing to add
        if target is not None and getattr(target, "registry", target) is not REGISTRY.registry:
            target.register(self)

    def collect(self) -> list[MetricFamily]:
        """The families of apytheus' default registry."""
        return collect_sync(REGISTRY, openmetrics=False)


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Does nothing: apytheus tells live workers by a heartbeat (see ``live*`` modes)."""
