"""apytheus imports no web framework, and hooks into Quart only once Quart is imported."""

from __future__ import annotations

import subprocess
import sys


def test_no_framework_is_imported_and_the_quart_hook_waits_for_quart() -> None:
    """apytheus imports no web framework; it connects to Quart's signal once Quart is there."""
    program = """
import sys
from apytheus.middleware import MetricsMiddleware
async def app(scope, receive, send): ...
MetricsMiddleware(app, registry=None)
print(sorted({m.split(".")[0] for m in sys.modules} & {"django", "litestar", "quart", "starlette"}))
from quart.signals import request_started
MetricsMiddleware(app, registry=None)
MetricsMiddleware(app, registry=None)
print(len(request_started.receivers))
"""
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split("\n") == ["[]", "1", ""]
