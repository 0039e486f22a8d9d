"""examples/flask_app.py serves its metrics through make_wsgi_app (a real process)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_flask_example_counts_its_requests(free_tcp_port_factory: Callable[[], int]) -> None:
    port = free_tcp_port_factory()
    args = [sys.executable, str(ROOT / "examples" / "flask_app.py"), "--port", str(port)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/metrics", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, "the Flask example")
        for name in ("ada", "bob", "cy"):
            assert httpx.get(f"{base}/hello/{name}").text == f"hello {name}"
        text = httpx.get(f"{base}/metrics").text
    finally:
        process.terminate()
        process.wait(timeout=15)
    count = re.search(r'request_duration_seconds_count\{route="/hello/<name>"\} (\S+)', text)
    assert count is not None and float(count.group(1)) == 3.0
