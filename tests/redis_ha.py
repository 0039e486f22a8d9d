"""A replicated Redis for the failover tests: a master, a replica and 3 sentinels, all real.

Every process is a redis-server of the test's own on a free port (sentinels are
``redis-server <conf> --sentinel``), stopped by its own PID.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis
from redis_server import RedisServer

SERVICE = "apytheus-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Sentinel:
    """One sentinel process watching ``SERVICE`` (failover after 2 s without an answer)."""

    def __init__(self, binary: str, workdir: Path, master_port: int) -> None:
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {workdir}\n"
            f"logfile {workdir / 'sentinel.log'}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 2000\n"
            f"sentinel failover-timeout {SERVICE} 4000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.process = subprocess.Popen(
            [binary, str(self.conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"sentinel on port {self.port} did not start") from None
                time.sleep(0.02)
        client.close()

    def master(self) -> tuple[str, int] | None:
        """The master's address as this sentinel sees it."""
        client = redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)
        try:
            found = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)  # type: ignore[no-untyped-call]
        finally:
            client.close()
        return (found[0], int(found[1])) if found else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class ReplicatedRedis:
    """``servers[0]`` starts as the master, ``servers[1]`` as its replica; sentinels watch."""

    def __init__(self, binary: str, workdir: Path, sentinels: int = 3) -> None:
        master = RedisServer(binary, free_port(), workdir / "a")
        master.start()
        replica = RedisServer(
            binary, free_port(), workdir / "b", "--replicaof", "127.0.0.1", str(master.port)
        )
        replica.start()
        self.servers = [master, replica]
        self.sentinels: list[Sentinel] = []
        try:
            wait_until(lambda: replicas_online(master) == 1, "the replica to sync")
            for i in range(sentinels):
                self.sentinels.append(Sentinel(binary, workdir / f"s{i}", master.port))
            if sentinels:
                wait_until(self._sentinels_know_the_replica, "the sentinels to see the replica")
        except BaseException:
            self.stop()
            raise

    @property
    def config(self) -> dict[str, object]:
        """The backend config that reaches the master through the sentinels."""
        return {
            "sentinels": [["127.0.0.1", s.port] for s in self.sentinels],
            "service_name": SERVICE,
        }

    def _sentinels_know_the_replica(self) -> bool:
        for sentinel in self.sentinels:
            client = redis.Redis(port=sentinel.port, socket_timeout=1)
            try:
                found = client.execute_command("SENTINEL", "REPLICAS", SERVICE)  # type: ignore[no-untyped-call]
            finally:
                client.close()
            if len(found) != 1:
                return False
        return True

    def master(self) -> RedisServer:
        """The server the sentinels agree is the master (they must all agree)."""
        seen = {s.master() for s in self.sentinels}
        assert len(seen) == 1, f"the sentinels disagree: {seen}"
        (address,) = seen
        assert address is not None
        return next(s for s in self.servers if s.port == address[1])

    def fail_over_by_kill(self) -> tuple[RedisServer, RedisServer]:
        """SIGKILL the master; returns (killed, promoted) once every sentinel names the new one."""
        old = self.master()
        old.kill()
        new = next(s for s in self.servers if s is not old)
        wait_until(
            lambda: all(s.master() == ("127.0.0.1", new.port) for s in self.sentinels),
            "the sentinels to promote the replica",
            timeout=30,
        )
        wait_until(lambda: role(new) == "master", "the replica to become master")
        return old, new

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()


def role(server: RedisServer) -> str:
    client = server.client()
    try:
        found = client.execute_command("ROLE")  # type: ignore[no-untyped-call]
    finally:
        client.close()
    kind = found[0]
    return kind.decode() if isinstance(kind, bytes) else str(kind)


def replicas_online(server: RedisServer) -> int:
    """How many replicas are connected to ``server`` and in sync."""
    client = server.client()
    try:
        info = client.info("replication")
    finally:
        client.close()
    return sum(
        1
        for key, value in info.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )


def wait_until(predicate: object, what: str, timeout: float = 15.0) -> None:
    """Poll ``predicate`` (errors count as not yet) until it holds, or fail after ``timeout``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except redis.exceptions.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
