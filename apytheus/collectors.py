"""Default collectors: process, platform and garbage-collector metrics, as prometheus_client's.

Unlike prometheus_client, apytheus registers none of them by itself: add the
ones you want (``ProcessCollector()``, ``PlatformCollector()``,
``GCCollector()``). Each is a custom collector, run by the process that answers
the scrape; on a shared backend (Redis) `ProcessCollector` and `GCCollector`
add a ``worker`` label, so that different workers' values are never mixed up
in one series.
"""

from __future__ import annotations

import gc
import os
import platform as _platform
import socket
from collections.abc import Callable
from typing import Any

from ._labels import EMPTY_LABELS, LabelSet, check_metric_name
from ._samples import MetricFamily, Sample
from .backends import SupportsWorker, get_backend
from .metrics import CustomCollector
from .registry import REGISTRY, Registry

__all__ = ["GCCollector", "PlatformCollector", "ProcessCollector"]

try:
    import resource

    _PAGESIZE = resource.getpagesize()
except ImportError:  # not Unix: ProcessCollector yields nothing there anyway
    _PAGESIZE = 4096


def _clock_ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, TypeError, AttributeError, OSError):
        return 100.0  # what Linux uses almost everywhere


def _worker(enabled: bool | None) -> str | None:
    """The ``worker`` label's value, or None when the samples get no such label."""
    if enabled is False:
        return None
    backend = get_backend()
    worker = backend.worker if isinstance(backend, SupportsWorker) else None
    if worker is not None:
        return str(worker)
    # asked for explicitly on a backend without worker ids: name the process
    return f"{socket.gethostname()}:{os.getpid()}" if enabled else None


def _labels(pairs: tuple[tuple[str, str], ...], worker: str | None) -> LabelSet:
    if worker is not None:
        pairs = (*pairs, ("worker", worker))
    return LabelSet.from_pairs(pairs) if pairs else EMPTY_LABELS


class ProcessCollector(CustomCollector):
    """CPU, memory, file descriptors and start time of a process, read from ``/proc`` (Linux).

    The metrics (with ``namespace_`` in front when a namespace is given):
    ``process_cpu_seconds_total``, ``process_virtual_memory_bytes``,
    ``process_resident_memory_bytes``, ``process_start_time_seconds``,
    ``process_open_fds`` and ``process_max_fds``, with prometheus_client's
    names, types and help texts.

    Where ``proc`` cannot be read when the collector is created (macOS,
    Windows, a container without ``/proc``) it yields nothing, as
    prometheus_client's does. Once it works, a process whose ``stat`` can no
    longer be read (it exited, say) makes the collection fail: the scrape goes
    on and ``apytheus_collector_errors_total{collector="processcollector"}``
    counts it. The file descriptor metrics are left out, alone, when only they
    cannot be read (another user's process).

    Collecting reads three small files and one directory listing of
    ``/proc``, which the kernel serves from memory: it does not block.

    Args:
        namespace: prefix of the metric names, joined with ``_``.
        pid: returns the process id to report (``"self"``: this process).
        proc: where procfs is mounted.
        registry: where to register the collector (None: do not register).
        worker_label: add a ``worker`` label with the worker id. None (the
            default) adds it when the backend has worker ids (the Redis
            backend), where a scrape reaches one worker of many; True adds it
            always (``host:pid`` without worker ids); False never.

    Examples:
        >>> from apytheus import CollectorRegistry, generate_metrics
        >>> from apytheus.collectors import ProcessCollector
        >>> registry = CollectorRegistry()
        >>> _ = ProcessCollector(registry=registry)
        >>> "process_resident_memory_bytes " in generate_metrics(registry)
        True
    """

    def __init__(
        self,
        namespace: str = "",
        pid: Callable[[], int | str] = lambda: "self",
        proc: str = "/proc",
        registry: Registry | None = REGISTRY,
        worker_label: bool | None = None,
    ) -> None:
        self._prefix = f"{check_metric_name(namespace)}_process_" if namespace else "process_"
        self._pid = pid
        self._proc = proc
        self._worker_label = worker_label
        self._ticks = _clock_ticks()
        self._pagesize = _PAGESIZE
        # Boot time turns the start time (in ticks since boot) into a Unix time;
        # reading it also tells whether there is a procfs at all.
        self._btime = 0.0
        try:
            self._btime = self._boot_time()
        except (OSError, ValueError, IndexError):
            pass
        if registry is not None:
            registry.register(self)

    def _boot_time(self) -> float:
        with open(os.path.join(self._proc, "stat"), "rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
        return 0.0

    def collect(self) -> list[MetricFamily]:
        """Read the process' figures now (a fresh value on every scrape).

        Raises:
            OSError: the process' ``stat`` could not be read (it exited, say).
        """
        if not self._btime:
            return []
        labels = _labels((), _worker(self._worker_label))
        pid_dir = os.path.join(self._proc, str(self._pid()).strip())
        with open(os.path.join(pid_dir, "stat"), "rb") as stat:
            # the command name, in parentheses, may hold spaces and ")": split after the last
            fields = stat.read().rsplit(b")", 1)[-1].split()

        def gauge(name: str, doc: str, value: float) -> MetricFamily:
            name = self._prefix + name
            return MetricFamily(name, doc, "gauge", [Sample(name, labels, value)])

        cpu = self._prefix + "cpu_seconds"
        out = [
            gauge("virtual_memory_bytes", "Virtual memory size in bytes.", float(fields[20])),
            gauge(
                "resident_memory_bytes",
                "Resident memory size in bytes.",
                float(fields[21]) * self._pagesize,
            ),
            gauge(
                "start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                float(fields[19]) / self._ticks + self._btime,
            ),
            MetricFamily(
                cpu,
                "Total user and system CPU time spent in seconds.",
                "counter",
                [
                    Sample(
                        cpu + "_total",
                        labels,
                        # user and system time rounded apart, as prometheus_client does
                        float(fields[11]) / self._ticks + float(fields[12]) / self._ticks,
                    )
                ],
            ),
        ]
        try:
            max_fds = self._max_fds(pid_dir)
            open_fds = len(os.listdir(os.path.join(pid_dir, "fd")))
        except OSError:  # fd and limits need more rights than stat: leave only these out
            return out
        out.append(gauge("open_fds", "Number of open file descriptors.", float(open_fds)))
        if max_fds is not None:
            out.append(gauge("max_fds", "Maximum number of open file descriptors.", max_fds))
        return out

    @staticmethod
    def _max_fds(pid_dir: str) -> float | None:
        with open(os.path.join(pid_dir, "limits"), "rb") as limits:
            for line in limits:
                if line.startswith(b"Max open files"):
                    soft = line.split()[3]
                    return float("inf") if soft == b"unlimited" else float(soft)
        return None


class PlatformCollector(CustomCollector):
    """The Python implementation and version, as ``python_info`` (a gauge of 1).

    Labels: ``implementation``, ``major``, ``minor``, ``patchlevel`` and
    ``version`` (and ``jvm_*`` on Jython), as in prometheus_client. They are
    read once, when the collector is created. No ``worker`` label is added on
    a shared backend: every worker of a deployment reports the same labels.

    Args:
        registry: where to register the collector (None: do not register).
        platform: the `platform` module, or an object with its functions (for tests).

    Examples:
        >>> from apytheus import CollectorRegistry, generate_metrics
        >>> from apytheus.collectors import PlatformCollector
        >>> registry = CollectorRegistry()
        >>> _ = PlatformCollector(registry=registry)
        >>> print(generate_metrics(registry))  # doctest: +ELLIPSIS
        # HELP python_info Python platform information
        # TYPE python_info gauge
        python_info{implementation="...",major="3",minor="...",patchlevel="...",version="3..."} 1.0
        <BLANKLINE>
    """

    def __init__(self, registry: Registry | None = REGISTRY, platform: Any = None) -> None:
        self._platform: Any = _platform if platform is None else platform
        info = self._info()
        if self._platform.system() == "Java":
            info.update(self._java())
        labels = LabelSet.from_pairs(sorted((k, str(v)) for k, v in info.items()))
        self._families = [
            MetricFamily(
                "python_info",
                "Python platform information",
                "gauge",
                [Sample("python_info", labels, 1.0)],
            )
        ]
        if registry is not None:
            registry.register(self)

    def collect(self) -> list[MetricFamily]:
        """The ``python_info`` family (computed once, at creation)."""
        return self._families

    def _info(self) -> dict[str, str]:
        major, minor, patchlevel = self._platform.python_version_tuple()
        return {
            "version": self._platform.python_version(),
            "implementation": self._platform.python_implementation(),
            "major": major,
            "minor": minor,
            "patchlevel": patchlevel,
        }

    def _java(self) -> dict[str, str]:
        java_version, _, vminfo, _ = self._platform.java_ver()
        vm_name, vm_release, vm_vendor = vminfo
        return {
            "jvm_version": java_version,
            "jvm_release": vm_release,
            "jvm_vendor": vm_vendor,
            "jvm_name": vm_name,
        }


class GCCollector(CustomCollector):
    """Garbage collector statistics per generation (CPython's `gc.get_stats`).

    Counters ``python_gc_objects_collected_total``,
    ``python_gc_objects_uncollectable_total`` and ``python_gc_collections_total``,
    each with a ``generation`` label, as in prometheus_client. On another
    implementation (PyPy) it registers nothing, as prometheus_client's does.

    Args:
        registry: where to register the collector (None: do not register).
        worker_label: add a ``worker`` label; see `ProcessCollector`.

    Examples:
        >>> from apytheus import CollectorRegistry
        >>> from apytheus.collectors import GCCollector
        >>> registry = CollectorRegistry()
        >>> _ = GCCollector(registry=registry)
        >>> registry.get_sample_value("python_gc_collections_total", {"generation": "0"}) >= 0
        True
    """

    _FAMILIES = (
        ("python_gc_objects_collected", "Objects collected during gc", "collected"),
        (
            "python_gc_objects_uncollectable",
            "Uncollectable objects found during GC",
            "uncollectable",
        ),
        ("python_gc_collections", "Number of times this generation was collected", "collections"),
    )

    def __init__(
        self, registry: Registry | None = REGISTRY, worker_label: bool | None = None
    ) -> None:
        self._worker_label = worker_label
        supported = hasattr(gc, "get_stats") and _platform.python_implementation() == "CPython"
        if supported and registry is not None:
            registry.register(self)

    def collect(self) -> list[MetricFamily]:
        """Read `gc.get_stats` now."""
        worker = _worker(self._worker_label)
        stats = gc.get_stats()
        labels = [_labels((("generation", str(gen)),), worker) for gen in range(len(stats))]
        return [
            MetricFamily(
                name,
                doc,
                "counter",
                [
                    Sample(name + "_total", labels[gen], float(stat[key]))
                    for gen, stat in enumerate(stats)
                ],
            )
            for name, doc, key in self._FAMILIES
        ]
