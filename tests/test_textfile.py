"""write_to_textfile: what the node exporter's textfile collector reads, replaced atomically."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from apytheus import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_metrics,
    write_to_textfile,
)


def filled(prefix: str = "job", series: int = 3) -> CollectorRegistry:
    """A registry with a few metric types, labels and a value that needs escaping."""
    registry = CollectorRegistry()
    rows = Counter(f"{prefix}_rows", "Rows loaded", ["table"], registry=registry)
    for i in range(series):
        rows.labels(table=f"t{i}").inc(i + 1)
    Gauge(f"{prefix}_note", "A note", ["text"], registry=registry).labels(
        text='ünï "quoted" \\ and\nnewline'
    ).set(1)
    Histogram(f"{prefix}_seconds", "Duration", registry=registry).observe(0.3)
    return registry


def test_the_file_holds_exactly_what_generate_metrics_renders(tmp_path: Path) -> None:
    registry = filled()
    path = tmp_path / "job.prom"
    write_to_textfile(str(path), registry)
    assert path.read_bytes() == generate_metrics(registry).encode("utf-8")


def test_a_path_object_and_the_default_registry_are_accepted(
    tmp_path: Path, default_registry: CollectorRegistry
) -> None:
    Gauge("default_registry_gauge", "From REGISTRY").set(7)
    path = tmp_path / "default.prom"
    write_to_textfile(path)
    assert path.read_text(encoding="utf-8") == generate_metrics(default_registry)
    assert "default_registry_gauge 7.0" in path.read_text(encoding="utf-8")


def test_an_existing_file_is_replaced_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "job.prom"
    path.write_text("old content\n", encoding="utf-8")
    registry = filled()
    write_to_textfile(path, registry)
    assert path.read_text(encoding="utf-8") == generate_metrics(registry)
    assert os.listdir(tmp_path) == ["job.prom"]


def test_the_temporary_file_is_renamed_over_the_target_from_the_same_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename within one directory is atomic; the collector skips names not ending in .prom."""
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        renames.append((os.fspath(src), os.fspath(dst)))
        assert Path(src).read_bytes() == generate_metrics(registry).encode()  # complete first
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    registry = filled()
    path = tmp_path / "job.prom"
    write_to_textfile(path, registry)
    [(src, dst)] = renames
    assert dst == str(path)
    assert Path(src).parent == tmp_path
    assert src != dst
    assert not src.endswith(".prom")
    assert not Path(src).exists()


def test_a_reader_sees_the_old_or_the_new_file_never_a_mix(tmp_path: Path) -> None:
    """A thread reads while the file is rewritten: every read is one whole version."""
    path = tmp_path / "job.prom"
    first, second = filled("first", 3000), filled("second", 3000)
    versions = {generate_metrics(first).encode(), generate_metrics(second).encode()}
    write_to_textfile(path, first)
    seen: list[bytes] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(path.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(40):
            write_to_textfile(path, second if i % 2 == 0 else first)
    finally:
        done.set()
        reader.join()
    assert seen, "the reader never ran"
    assert {len(s) for s in seen if s not in versions} == set()
    assert os.listdir(tmp_path) == ["job.prom"]


def test_a_failed_rename_removes_the_temporary_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "job.prom"
    path.write_text("previous\n", encoding="utf-8")

    def fail(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        write_to_textfile(path, filled())
    assert os.listdir(tmp_path) == ["job.prom"]
    assert path.read_text(encoding="utf-8") == "previous\n"


def test_a_target_that_is_a_directory_raises_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "job.prom"
    target.mkdir()
    with pytest.raises(OSError):
        write_to_textfile(target, filled())
    assert os.listdir(tmp_path) == ["job.prom"]
    assert target.is_dir()


def test_a_missing_directory_raises_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_to_textfile(tmp_path / "missing" / "job.prom", filled())
    assert os.listdir(tmp_path) == []
