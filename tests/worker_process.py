"""A test's worker process that talks in lines on stdin/stdout; stopped by its own PID."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


class WorkerProcess:
    """``python <args>`` with ``env``; its stderr goes to ``log``."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, *args],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.log = log
        self._buffer = b""

    def line(self, timeout: float = 30) -> str:
        """The next line it prints (fails the test if it exits or stays silent)."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                pytest.fail(f"worker {self.process.pid} did not answer in {timeout} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                pytest.fail(f"worker {self.process.pid} exited:\n{self.log.read_text()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def exit(self, timeout: float = 30) -> dict[str, Any]:
        """Send it a line (it leaves its lifespan: the last flush) and read its JSON report."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"exit\n")
        self.process.stdin.close()
        report: dict[str, Any] = json.loads(self.line(timeout))
        assert self.process.wait(timeout=timeout) == 0, self.log.read_text()
        return report

    def stop(self) -> None:
        """Kill it if it still runs (by its PID) and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=15)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
