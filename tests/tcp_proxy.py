"""Loopback TCP proxies: one drops a connection after the server answered, one adds latency."""

from __future__ import annotations

import socket
import threading
import time


class _Link:
    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.mute = False  # the next reply is swallowed and the client disconnected

    def close(self) -> None:
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class _Proxy:
    """Accepts on 127.0.0.1:<port>, connects each client to the server; `_serve` forwards."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._links: list[_Link] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            link = _Link(client, socket.create_connection(("127.0.0.1", self.target_port)))
            self._links.append(link)
            self._serve(link)

    def _serve(self, link: _Link) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._listener.close()
        for link in self._links:
            link.close()


class DroppingProxy(_Proxy):
    """Forwards 127.0.0.1:<port> to a server on 127.0.0.1.

    ``drop_after(marker)``: the next client request containing ``marker`` is
    forwarded; the server's reply is thrown away and the client's connection
    closed. The server did the work; the client never hears of it.
    """

    def __init__(self, target_port: int) -> None:
        self._marker: bytes | None = None
        self.dropped = threading.Event()
        super().__init__(target_port)

    def drop_after(self, marker: bytes) -> None:
        self.dropped.clear()
        self._marker = marker

    def _serve(self, link: _Link) -> None:
        threading.Thread(target=self._requests, args=(link,), daemon=True).start()
        threading.Thread(target=self._replies, args=(link,), daemon=True).start()

    def _requests(self, link: _Link) -> None:
        try:
            while data := link.client.recv(65536):
                marker = self._marker
                if marker is not None and marker in data:
                    self._marker = None
                    link.mute = True
                link.server.sendall(data)
        except OSError:
            pass

    def _replies(self, link: _Link) -> None:
        try:
            while data := link.server.recv(65536):
                if link.mute:
                    self.dropped.set()
                    link.close()
                    return
                link.client.sendall(data)
        except OSError:
            pass


class DelayingProxy(_Proxy):
    """Forwards 127.0.0.1:<port> to a server on 127.0.0.1, each way ``delay`` seconds late.

    Every chunk is held until ``delay`` after it arrived, in order, so a round trip
    takes ``2 * delay`` more; ``delay`` may change at any time (0: as fast as it can).
    """

    def __init__(self, target_port: int, delay: float = 0.0) -> None:
        self.delay = delay
        super().__init__(target_port)

    def _serve(self, link: _Link) -> None:
        for source, sink in ((link.client, link.server), (link.server, link.client)):
            self._pump(source, sink, link)

    def _pump(self, source: socket.socket, sink: socket.socket, link: _Link) -> None:
        queue: list[tuple[float, bytes]] = []
        ready = threading.Condition()

        def read() -> None:
            try:
                while data := source.recv(65536):
                    with ready:
                        queue.append((time.monotonic() + self.delay, data))
                        ready.notify()
            except OSError:
                pass
            with ready:
                queue.append((0.0, b""))  # the end
                ready.notify()

        def write() -> None:
            while True:
                with ready:
                    while not queue:
                        ready.wait()
                    due, data = queue.pop(0)
                if not data:
                    link.close()
                    return
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    sink.sendall(data)
                except OSError:
                    link.close()
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()
