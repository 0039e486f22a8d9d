"""EXPOSE: the WSGI app that serves a registry, and the thread server that runs it."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..exceptions import BackendUnavailable
from ..registry import REGISTRY, Registry
from .auth import credentials
from .negotiate import gzip_ok, negotiate, query_names
from .render import render_format


def make_wsgi_app(
    registry: Registry = REGISTRY,
    *,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    protobuf: bool = True,
) -> Callable[..., Iterable[bytes]]:
    """A WSGI app serving ``registry`` (for Flask, Django and other sync servers).

    ``bearer_token``, ``basic_auth`` and ``protobuf`` as in `make_asgi_app`.
    """
    auth = credentials(bearer_token, basic_auth)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if auth is not None and not auth.allows(environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("WWW-Authenticate", auth.challenge)])
            return [b"unauthorized\n"]
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b"method not allowed\n"]
        fmt = negotiate(environ.get("HTTP_ACCEPT"), protobuf)
        names = query_names(environ.get("QUERY_STRING", ""))
        try:
            body = render_format(registry, fmt, names)
        except BackendUnavailable as exc:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"{exc}\n".encode()]
        headers = [("Content-Type", fmt.content_type)]
        if gzip_ok(environ.get("HTTP_ACCEPT_ENCODING")):
            body = gzip.compress(body, compresslevel=6)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [b"" if method == "HEAD" else body]

    return app


def start_http_server(
    port: int,
    addr: str = "0.0.0.0",
    registry: Registry = REGISTRY,
    *,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    protobuf: bool = True,
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``registry`` over HTTP from a daemon thread (for scripts and workers).

    ``bearer_token``, ``basic_auth`` and ``protobuf`` as in `make_asgi_app`.

    Returns:
        The server and its thread; call ``server.shutdown()`` to stop it.
    """
    wsgi = make_wsgi_app(
        registry, bearer_token=bearer_token, basic_auth=basic_auth, protobuf=protobuf
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            environ = {
                "REQUEST_METHOD": self.command,
                "QUERY_STRING": self.path.partition("?")[2],
                "HTTP_ACCEPT": self.headers.get("Accept"),
                "HTTP_ACCEPT_ENCODING": self.headers.get("Accept-Encoding"),
                "HTTP_AUTHORIZATION": self.headers.get("Authorization"),
            }
            status_headers: list[Any] = []
            body = b"".join(wsgi(environ, lambda s, h: status_headers.extend((s, h))))
            self.send_response(int(status_headers[0].split()[0]))
            for k, v in status_headers[1]:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def handle_one_request(self) -> None:
            """Answer any method: the WSGI app says 405 to all but GET and HEAD (not 501)."""
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self.do_GET()
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: scrapes every few seconds would flood stderr."""

    server = ThreadingHTTPServer((addr, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="apytheus-http", daemon=True)
    thread.start()
    return server, thread
