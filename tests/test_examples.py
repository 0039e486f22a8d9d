"""The examples run as users run them (real processes, real HTTP)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
