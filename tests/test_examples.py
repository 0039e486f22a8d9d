"""The examples run as users run them (real processes, real HTTP)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_demo_serves_and_counts_every_request() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--demo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    counts = dict(
        re.findall(r'http_request_duration_seconds_count\{route="([^"]+)"\} (\S+)', out.stdout)
    )
    assert counts == {"/": "5.0", "/slow": "1.0"}
    slow_sum = re.search(r'_sum\{route="/slow"\} (\S+)', out.stdout)
    assert slow_sum is not None and float(slow_sum.group(1)) >= 0.3  # the awaited sleep is timed


def test_aiohttp_app_serves_and_labels_requests_by_route_template(
    free_tcp_port: int, tmp_path: Path
) -> None:
    """examples/aiohttp_app.py as a real server process: a few requests, then its /metrics."""
    log = tmp_path / "aiohttp_app.log"
    command = [sys.executable, str(ROOT / "examples" / "aiohttp_app.py")]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "--port", str(free_tcp_port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{free_tcp_port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/metrics")
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(
                            f"the app did not answer:\n{log.read_text()}"
                        ) from None
                    time.sleep(0.05)
            for i in range(3):
                assert client.get(f"/items/{i}").json() == {"item_id": str(i)}
            assert client.get("/wp-admin").status_code == 404
            metrics = client.get("/metrics")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert metrics.status_code == 200
    counts = re.findall(
        r'http_request_duration_seconds_count\{method="GET",route="([^"]+)",status_code="(\d+)"\} '
        r"(\S+)",
        metrics.text,
    )
    assert sorted(counts) == [("/items/{item_id}", "200", "3.0"), ("<unmatched>", "404", "1.0")]
