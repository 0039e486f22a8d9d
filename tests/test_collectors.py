"""The default collectors expose what prometheus_client's expose (it is the oracle here)."""

from __future__ import annotations

import gc
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import prometheus_client as pc
import pytest
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_string_to_metric_families as parse_text

from apytheus.backends.redis import RedisBackend
from apytheus.collectors import GCCollector, PlatformCollector, ProcessCollector
from apytheus.exposition import agenerate_metrics, generate_metrics
from apytheus.registry import REGISTRY, CollectorRegistry

# name -> (type, help, {(sample name, label names)})
Shape = dict[str, tuple[str, str, frozenset[tuple[str, tuple[str, ...]]]]]
Parser = Callable[[str], Iterable[Any]]

PROCESS_NAMES = {
    "process_cpu_seconds",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
}


def parse_openmetrics(text: str) -> list[Any]:
    """prometheus_client's OpenMetrics parser (untyped, hence this wrapper)."""
    parse: Parser = om_parser.text_string_to_metric_families
    return list(parse(text))


def pc_openmetrics(registry: pc.CollectorRegistry) -> bytes:
    """prometheus_client's OpenMetrics exposition (untyped, hence this wrapper)."""
    generate: Callable[[pc.CollectorRegistry], bytes] = om_exposition.generate_latest
    return generate(registry)


def shape(text: str, parser: Parser) -> Shape:
    return {
        f.name: (
            f.type,
            f.documentation,
            frozenset((s.name, tuple(sorted(s.labels))) for s in f.samples),
        )
        for f in parser(text)
    }


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text-format exposition, parsed by prometheus_client."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in parse_text(text)
        for s in f.samples
    }


def ours_and_theirs(
    make: Callable[[Any], object], make_pc: Callable[[Any], object]
) -> tuple[CollectorRegistry, pc.CollectorRegistry]:
    ours, theirs = CollectorRegistry(), pc.CollectorRegistry()
    make(ours)
    make_pc(theirs)
    return ours, theirs


def all_three(registry: Any) -> None:
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


def all_three_pc(registry: Any) -> None:
    pc.ProcessCollector(registry=registry)
    pc.PlatformCollector(registry=registry)
    pc.GCCollector(registry=registry)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_names_types_help_and_labels_are_prometheus_clients_in_text_format() -> None:
    ours, theirs = ours_and_theirs(all_three, all_three_pc)
    mine = shape(generate_metrics(ours), parse_text)
    assert mine == shape(pc.generate_latest(theirs).decode(), parse_text)
    assert PROCESS_NAMES | {"python_info", "python_gc_collections"} <= set(mine)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_names_types_help_and_labels_are_prometheus_clients_in_openmetrics() -> None:
    ours, theirs = ours_and_theirs(all_three, all_three_pc)
    mine = shape(generate_metrics(ours, openmetrics=True), parse_openmetrics)
    assert mine == shape(pc_openmetrics(theirs).decode(), parse_openmetrics)
    assert mine["process_cpu_seconds"][0] == "counter"
    assert mine["python_gc_objects_uncollectable"][0] == "counter"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_values_that_do_not_move_equal_prometheus_clients() -> None:
    ours, theirs = ours_and_theirs(all_three, all_three_pc)
    mine, want = values(generate_metrics(ours)), values(pc.generate_latest(theirs).decode())
    for name in ("process_start_time_seconds", "process_max_fds"):
        assert mine[(name, ())] == want[(name, ())]
    info = [k for k in mine if k[0] == "python_info"]
    assert info == [k for k in want if k[0] == "python_info"]
    assert mine[info[0]] == 1.0
    assert dict(info[0][1])["version"] == platform.python_version()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_values_that_move_lie_between_two_prometheus_client_readings() -> None:
    ours, theirs = ours_and_theirs(all_three, all_three_pc)
    before = values(pc.generate_latest(theirs).decode())
    mine = values(generate_metrics(ours))
    after = values(pc.generate_latest(theirs).decode())
    monotonic = [k for k in mine if k[0] == "process_cpu_seconds_total" or "_gc_" in k[0]]
    assert len(monotonic) == 1 + 3 * len(gc.get_stats())
    for key in monotonic:
        assert before[key] <= mine[key] <= after[key], key
    # memory and descriptors go up and down: read the right field, in the right unit
    for name in ("process_resident_memory_bytes", "process_virtual_memory_bytes"):
        assert mine[(name, ())] == pytest.approx(before[(name, ())], rel=0.25)
    fds = ("process_open_fds", ())
    assert min(before[fds], after[fds]) <= mine[fds] <= max(before[fds], after[fds])


def test_gc_counts_follow_collections() -> None:
    registry = CollectorRegistry()
    GCCollector(registry=registry)
    key = ("python_gc_collections_total", {"generation": "2"})
    first = registry.get_sample_value(*key)
    assert first is not None
    gc.collect()
    second = registry.get_sample_value(*key)
    assert second is not None and second >= first + 1


def fake_proc(root: Path, pid: str, fds: int | None) -> Path:
    """A procfs tree with made-up but well-formed files."""
    (root / pid).mkdir(parents=True)
    (root / "stat").write_bytes(b"cpu  1 2 3\nbtime 1700000000\nprocesses 9\n")
    fields = ["S"] + [str(n) for n in range(1, 50)]
    fields[11], fields[12] = "250", "150"  # utime, stime (ticks)
    fields[19], fields[20], fields[21] = "4200", "123456789", "1000"  # start, vsize, rss
    # a command name with ") " in it: only the last ")" ends it
    (root / pid / "stat").write_bytes(f"{pid} (odd) name) {' '.join(fields)}\n".encode())
    if fds is not None:
        (root / pid / "limits").write_bytes(
            b"Limit                     Soft Limit           Hard Limit           Units\n"
            b"Max cpu time              unlimited            unlimited            seconds\n"
            b"Max open files            1024                 524288               files\n"
        )
        (root / pid / "fd").mkdir()
        for n in range(fds):
            (root / pid / "fd" / str(n)).touch()
    return root


def test_values_from_a_given_proc_tree_equal_prometheus_clients(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", "77", fds=5)
    ours, theirs = ours_and_theirs(
        lambda r: ProcessCollector(pid=lambda: 77, proc=str(proc), registry=r),
        lambda r: pc.ProcessCollector(pid=lambda: 77, proc=str(proc), registry=r),
    )
    mine = values(generate_metrics(ours))
    assert mine == values(pc.generate_latest(theirs).decode())
    ticks = os.sysconf("SC_CLK_TCK")
    assert mine[("process_cpu_seconds_total", ())] == pytest.approx(400 / ticks)
    assert mine[("process_start_time_seconds", ())] == pytest.approx(1700000000 + 4200 / ticks)
    assert mine[("process_open_fds", ())] == 5.0
    assert mine[("process_max_fds", ())] == 1024.0


def test_descriptor_metrics_alone_are_left_out_when_unreadable(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", "77", fds=None)
    registry = CollectorRegistry()
    ProcessCollector(pid=lambda: 77, proc=str(proc), registry=registry)
    names = {n for n, _ in values(generate_metrics(registry))}
    assert names == {
        "process_cpu_seconds_total",
        "process_virtual_memory_bytes",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    }
    assert "apytheus_collector_errors" not in generate_metrics(registry)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_another_process_can_be_reported() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ours, theirs = ours_and_theirs(
            lambda r: ProcessCollector(pid=lambda: child.pid, registry=r),
            lambda r: pc.ProcessCollector(pid=lambda: child.pid, registry=r),
        )
        own = ProcessCollector(registry=CollectorRegistry()).collect()
        mine, want = values(generate_metrics(ours)), values(pc.generate_latest(theirs).decode())
    finally:
        child.kill()
        child.wait()
    start = ("process_start_time_seconds", ())
    assert mine[start] == want[start]
    assert (
        mine[start] > next(f for f in own if f.name.endswith("start_time_seconds")).samples[0].value
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_a_namespace_prefixes_the_process_metrics_as_in_prometheus_client() -> None:
    ours, theirs = ours_and_theirs(
        lambda r: ProcessCollector(namespace="shop", registry=r),
        lambda r: pc.ProcessCollector(namespace="shop", registry=r),
    )
    mine = shape(generate_metrics(ours), parse_text)
    assert mine == shape(pc.generate_latest(theirs).decode(), parse_text)
    assert set(mine) == {"shop_" + n for n in PROCESS_NAMES}


def test_an_invalid_namespace_raises() -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        ProcessCollector(namespace="bad\ud800", registry=None)


def test_a_registry_prefix_is_not_applied_as_to_any_custom_collector() -> None:
    registry = CollectorRegistry(prefix="shop")
    GCCollector(registry=registry)
    assert "\npython_gc_collections_total{" in generate_metrics(registry)


def test_without_procfs_the_process_collector_yields_nothing_like_prometheus_clients() -> None:
    ours, theirs = ours_and_theirs(
        lambda r: ProcessCollector(proc="/nonexistent", registry=r),
        lambda r: pc.ProcessCollector(proc="/nonexistent", registry=r),
    )
    assert generate_metrics(ours) == ""
    assert pc.generate_latest(theirs) == b""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_a_process_that_cannot_be_read_is_a_collector_error_not_a_failed_scrape() -> None:
    registry = CollectorRegistry()
    ProcessCollector(pid=lambda: 999_999_999, registry=registry)  # above any pid_max
    GCCollector(registry=registry)
    text = generate_metrics(registry)
    parsed = values(text)
    assert parsed[("apytheus_collector_errors_total", (("collector", "processcollector"),))] == 1
    assert ("python_gc_collections_total", (("generation", "0"),)) in parsed
    assert "process_" not in text
    list(parse_openmetrics(generate_metrics(registry, openmetrics=True)))


def test_python_info_on_jython_has_the_jvm_labels_of_prometheus_client() -> None:
    jython = SimpleNamespace(
        python_version_tuple=lambda: ("2", "7", "3"),
        python_version=lambda: "2.7.3",
        python_implementation=lambda: "Jython",
        system=lambda: "Java",
        java_ver=lambda: ("1.8.0", "Oracle", ("OpenJDK", "25.0", "Oracle"), ("Linux", "", "")),
    )
    ours, theirs = ours_and_theirs(
        lambda r: PlatformCollector(registry=r, platform=jython),
        lambda r: pc.PlatformCollector(registry=r, platform=jython),
    )
    mine = generate_metrics(ours)
    assert values(mine) == values(pc.generate_latest(theirs).decode())
    assert 'jvm_name="OpenJDK"' in mine and 'implementation="Jython"' in mine


def test_gc_collector_registers_nothing_outside_cpython(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "python_implementation", lambda: "PyPy")
    registry = CollectorRegistry()
    GCCollector(registry=registry)
    assert registry.collect() == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_collectors_register_in_the_default_registry_unless_given_none(
    default_registry: CollectorRegistry,
) -> None:
    ProcessCollector()
    PlatformCollector()
    GCCollector()
    assert len(default_registry.collect()) == 3
    assert "process_cpu_seconds_total" in generate_metrics()
    ProcessCollector(registry=None)
    assert len(REGISTRY.collect()) == 3


def test_importing_the_module_registers_nothing() -> None:
    code = (
        "import apytheus.collectors, apytheus\n"
        "assert apytheus.REGISTRY.collect() == [], apytheus.REGISTRY.collect()\n"
        "assert apytheus.generate_metrics() == ''\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
async def test_the_async_exposition_serves_them_and_parses() -> None:
    registry = CollectorRegistry()
    all_three(registry)
    text = await agenerate_metrics(registry)
    names = {f.name for f in parse_text(text)}
    assert PROCESS_NAMES | {"python_info", "python_gc_objects_collected"} <= names
    om = {f.name for f in parse_openmetrics(await agenerate_metrics(registry, openmetrics=True))}
    assert om == names


def worker_labels(text: str) -> dict[str, set[str | None]]:
    out: dict[str, set[str | None]] = {}
    for family in parse_text(text):
        for s in family.samples:
            out.setdefault(s.name, set()).add(s.labels.get("worker"))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_on_the_in_process_backend_there_is_no_worker_label_unless_asked() -> None:
    registry = CollectorRegistry()
    all_three(registry)
    assert set().union(*worker_labels(generate_metrics(registry)).values()) == {None}
    asked = CollectorRegistry()
    ProcessCollector(registry=asked, worker_label=True)
    GCCollector(registry=asked, worker_label=True)
    found = set().union(*worker_labels(generate_metrics(asked)).values())
    assert found == {f"{socket.gethostname()}:{os.getpid()}"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_on_the_redis_backend_process_and_gc_samples_carry_the_worker(
    redis_backend: RedisBackend,
) -> None:
    registry = CollectorRegistry()
    all_three(registry)
    text = generate_metrics(registry)
    labels = worker_labels(text)
    assert labels["python_info"] == {None}
    del labels["python_info"]
    assert len(labels) == 6 + 3
    assert set().union(*labels.values()) == {redis_backend.worker}
    list(parse_openmetrics(generate_metrics(registry, openmetrics=True)))

    off = CollectorRegistry()
    ProcessCollector(registry=off, worker_label=False)
    GCCollector(registry=off, worker_label=False)
    assert set().union(*worker_labels(generate_metrics(off)).values()) == {None}
