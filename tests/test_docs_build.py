"""The documentation site builds with ``mkdocs build --strict``: no warning, no page left out."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent


def test_mkdocs_build_strict_passes_with_no_warning(tmp_path: Path) -> None:
    missing = [m for m in ("mkdocs", "material", "mkdocstrings") if not importlib.util.find_spec(m)]
    if missing:
        message = f"{', '.join(missing)} not installed; pip install -e '.[dev]'"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    site = tmp_path / "site"
    # Material prints a banner about MkDocs 2.0 on every build; it is not a build warning.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict"]
    command += ["--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)]
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=50)
    log = out.stdout + out.stderr
    assert out.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    assert "WARNING" not in log, log
    assert 'not included in the "nav"' not in log, f"every page must be in the nav:\n{log}"
    assert (site / "index.html").is_file()
    assert (site / "reference" / "metrics" / "index.html").is_file()
