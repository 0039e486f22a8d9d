"""Choosing the backend: arguments, environment variables, a user's own class."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from apytheus import CollectorRegistry, Counter
from apytheus.backends import (
    Backend,
    InProcessBackend,
    MetricSpec,
    ScalarSeries,
    SingleProcessBackend,
    SupportsShare,
    get_backend,
    load_backend,
)
from apytheus.exceptions import InvalidBackendClassException, InvalidBackendConfigException


@pytest.fixture(autouse=True)
def restore_backend() -> Iterator[None]:
    previous = get_backend()
    yield
    from apytheus.backends._current import switch

    switch(previous)


class CountingBackend:
    """A user's backend: it keeps series in a dict and counts collections."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.series: dict[MetricSpec, list[Any]] = {}
        self.collections = 0

    def attach(self, metric: MetricSpec, series: Any) -> None:
        self.series.setdefault(metric, []).append(series)

    def detach(self, metric: MetricSpec, labels: Any) -> None:
        self.series.pop(metric, None)

    def collect(self, metrics: Sequence[MetricSpec]) -> dict[MetricSpec, list[Any]]:
        self.collections += 1
        return {m: self.series.get(m, []) for m in metrics}

    async def acollect(self, metrics: Sequence[MetricSpec]) -> dict[MetricSpec, list[Any]]:
        return self.collect(metrics)

    async def flush(self) -> None:
        pass

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        @asynccontextmanager
        async def nothing() -> Any:
            yield

        return nothing()


def test_the_default_backend_is_in_process() -> None:
    assert isinstance(get_backend(), InProcessBackend)
    assert SingleProcessBackend is InProcessBackend


def test_a_users_backend_class_qualifies_by_shape_and_gets_every_metric(
    registry: CollectorRegistry,
) -> None:
    gc.collect()  # metrics of earlier tests, if still alive, would follow the switch too
    early = Counter("early", "Created before the switch", registry=registry)
    early.inc(2)
    backend = load_backend(CountingBackend, {"option": 1})
    assert isinstance(backend, Backend) and isinstance(backend, CountingBackend)
    assert backend.config == {"option": 1}
    Counter("late", "Created after", registry=registry).inc()
    assert registry.get_sample_value("early_total") == 2.0
    assert registry.get_sample_value("late_total") == 1.0
    assert backend.collections == 2
    assert {"early", "late"} <= {m.name for m in backend.series}  # others alive may follow too
    assert all(isinstance(s, ScalarSeries) for ss in backend.series.values() for s in ss)


def test_the_in_process_backend_reads_each_metrics_own_series_and_keeps_none_itself(
    registry: CollectorRegistry,
) -> None:
    """It shares the family's mapping of series (SupportsShare): no entry of its own per series."""
    backend = load_backend(InProcessBackend)
    assert isinstance(backend, InProcessBackend) and isinstance(backend, SupportsShare)
    c = Counter("c", "C", ["a"], registry=registry)
    for v in "xyz":
        c.labels(a=v).inc()
    c.remove("y")
    assert not backend._series  # nothing kept per series
    collected = backend.collect([c._family.spec])[c._family.spec]
    assert sorted(s.labels.text for s in collected) == ['a="x"', 'a="z"']


def test_backend_from_environment_with_inline_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APYTHEUS_BACKEND_CLASS", f"{__name__}.CountingBackend")
    monkeypatch.setenv("APYTHEUS_BACKEND_CONFIG", '{"url": "redis://x"}')
    backend = load_backend()
    assert isinstance(backend, CountingBackend) and backend.config == {"url": "redis://x"}


def test_pytheus_variable_names_and_a_config_file_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "backend.json"
    config.write_text(json.dumps({"a": 1}))
    monkeypatch.setenv("PYTHEUS_BACKEND_CLASS", f"{__name__}.CountingBackend")
    monkeypatch.setenv("PYTHEUS_BACKEND_CONFIG", str(config))
    backend = load_backend()
    assert isinstance(backend, CountingBackend) and backend.config == {"a": 1}


@pytest.mark.parametrize(
    ("cls", "config", "error"),
    [
        ("no.such.module.Backend", None, InvalidBackendClassException),
        ("json.nothing_here", None, InvalidBackendClassException),
        ("json.dumps", None, InvalidBackendClassException),
        ("builtins.dict", None, InvalidBackendClassException),
        (InProcessBackend, "{not json", InvalidBackendConfigException),
        (InProcessBackend, "/no/such/file.json", InvalidBackendConfigException),
        (InProcessBackend, "[1, 2]", InvalidBackendConfigException),
    ],
)
def test_bad_backend_settings_raise_and_keep_the_current_backend(
    cls: Any, config: Any, error: type[Exception]
) -> None:
    before = get_backend()
    with pytest.raises(error):
        load_backend(cls, config)
    assert get_backend() is before


def test_environment_variables_select_the_backend_at_import(tmp_path: Path) -> None:
    """As in pytheus, `import apytheus` reads the variables (and does no I/O)."""
    env = {**os.environ, "APYTHEUS_BACKEND_CLASS": "apytheus.backends.SingleProcessBackend"}
    code = "import apytheus.backends as b; print(type(b.get_backend()).__name__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "InProcessBackend"


def test_pytheus_base_module_path_selects_the_in_process_backend() -> None:
    """pytheus' README: ``PYTHEUS_BACKEND_CLASS=pytheus.backends.base.SingleProcessBackend``."""
    from apytheus.backends.base import get_backend_class
    from apytheus.backends.base import load_backend as base_load_backend

    backend = base_load_backend("apytheus.backends.base.SingleProcessBackend")
    assert isinstance(backend, InProcessBackend)
    assert get_backend_class() is InProcessBackend
    env = {
        **os.environ,
        "PYTHEUS_BACKEND_CLASS": "apytheus.backends.base.SingleProcessBackend",
        "PYTHEUS_BACKEND_CONFIG": "{}",
    }
    code = "import apytheus.backends as b; print(type(b.get_backend()).__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "InProcessBackend"
