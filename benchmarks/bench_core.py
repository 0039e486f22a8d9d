#!/usr/bin/env python
"""Core-path benchmark: apytheus vs prometheus_client vs pytheus, side by side, in one run.

Measures the median cost of the hot recording calls (ns per call) and of one
text exposition of a large registry (ms per exposition) for the three
libraries, plus two library-free reference rows, and prints one table with the
apytheus/prometheus_client and apytheus/pytheus ratios next to the targets.

A second table times apytheus' native histograms (``native_bucket_factor=1.1``,
with the default classic buckets kept, and native only with ``buckets=()``).
prometheus_client and pytheus cannot record native histograms (prometheus_client
has a sample type for them, for custom collectors, but its ``Histogram`` keeps
classic buckets only; pytheus has none), so those rows are apytheus only, and
their ratios are against the classic ``observe()`` row with the same observed
values: against apytheus' (target ≤ 2×) and prometheus_client's (target < 1×),
paired by round like the others.

Method:

* Recording calls are timed with :mod:`timeit` (garbage collector off during a
  timed loop, as ``timeit`` does). The metric's method is bound to a local in
  the timer's setup, so the loop measures the public call itself, not the
  harness's attribute lookups. ``N`` (calls per repeat) is calibrated per cell
  so that one repeat lasts about ``--target-s`` seconds; calibration also warms
  up. The reported value is the median over the repeats of (repeat time / N).
* The ``observe(v)`` rows observe 16 values from 0.13 ms to 23 s (across the
  default buckets and beyond both ends, so across native buckets too), in a
  fixed shuffled order: the statement is the 16 calls written out with the
  values as constants, as ``observe(0.3)`` has its constant, and the time per
  call is the loop's time divided by 16 N (no iterator in the timed loop).
* Repeats are interleaved: each round times every library once, in a rotating
  order, so that slow phases of a shared machine hit all columns alike. The
  native rows are timed in the same rounds, right after the classic ones.
* Expositions are timed with ``time.perf_counter`` around one real call, with
  the garbage collector on (an exposition allocates tens of thousands of
  objects, and that cost is part of it) and ``gc.collect()`` run before each
  call, untimed. One untimed exposition per library warms up.
* prometheus_client's ``_created`` samples are turned off (with
  ``disable_created_metrics()``) only while the exposition rows run; the flag
  is read only at collection time, so it does not change the recording rows.
* Ratios are paired: the median, over the rounds, of (apytheus / other) within
  one round. A slow phase of the machine then hits both sides of a ratio, so
  a ratio can differ a little from the ratio of the two medians shown.
* The reference rows do not use any library; they are timed once per column
  (interleaved like the others), so their spread across columns shows the
  noise of the run.

The script is not a test: it always exits 0 (targets are reported, not
enforced). Run it from the repository root::

    python benchmarks/bench_core.py             # full run, about a minute
    python benchmarks/bench_core.py --quick     # smaller, < 20 s
    python benchmarks/bench_core.py --markdown  # the table as Markdown
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import math
import os
import platform
import statistics
import sys
import threading
import time
import timeit
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

LIBS: tuple[str, ...] = ("apytheus", "prometheus_client", "pytheus")
SHORT: dict[str, str] = {"apytheus": "apytheus", "prometheus_client": "p_c", "pytheus": "pytheus"}

COUNTER_SERIES = 10_000
# apytheus' and pytheus' default buckets (prometheus_client's default adds 0.075, 0.75 and 7.5)
SAME_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HISTOGRAM_SERIES = 1_000
NATIVE_FACTOR = 1.1
# observed by the ``observe(v)`` rows, in this order: latencies in seconds across magnitudes
MIXED_VALUES: tuple[float, ...] = (
    0.043, 1.6, 0.00071, 0.21, 7.9, 0.0063, 0.12, 0.019,
    23.0, 0.0024, 0.77, 0.068, 0.00013, 3.4, 0.011, 0.43,
)  # fmt: skip


# --------------------------------------------------------------------------- adapters
@dataclass(frozen=True)
class Lib:
    """How to build metrics and render a registry with one library."""

    name: str
    registry: Callable[[], Any]
    counter: Callable[..., Any]
    gauge: Callable[..., Any]
    histogram: Callable[..., Any]
    expose: Callable[[Any], Any]
    version: str
    # (name, registry, native_only) -> a native histogram; None: the library has none
    native_histogram: Callable[..., Any] | None = None


def _apytheus() -> Lib:
    import apytheus

    def counter(name: str, labels: Sequence[str], registry: Any) -> Any:
        return apytheus.Counter(name, "bench", required_labels=list(labels), registry=registry)

    def gauge(name: str, labels: Sequence[str], registry: Any) -> Any:
        return apytheus.Gauge(name, "bench", required_labels=list(labels), registry=registry)

    def histogram(
        name: str, labels: Sequence[str], registry: Any, buckets: Sequence[float] | None = None
    ) -> Any:
        extra = {} if buckets is None else {"buckets": buckets}
        return apytheus.Histogram(
            name, "bench", required_labels=list(labels), registry=registry, **extra
        )

    def native_histogram(name: str, registry: Any, native_only: bool) -> Any:
        extra: dict[str, Any] = {"buckets": ()} if native_only else {}
        return apytheus.Histogram(
            name, "bench", registry=registry, native_bucket_factor=NATIVE_FACTOR, **extra
        )

    return Lib(
        "apytheus",
        apytheus.CollectorRegistry,
        counter,
        gauge,
        histogram,
        apytheus.generate_metrics,
        apytheus.__version__,
        native_histogram,
    )


def _prometheus_client() -> Lib:
    from importlib.metadata import version

    import prometheus_client as pc

    def counter(name: str, labels: Sequence[str], registry: Any) -> Any:
        return pc.Counter(name, "bench", list(labels), registry=registry)

    def gauge(name: str, labels: Sequence[str], registry: Any) -> Any:
        return pc.Gauge(name, "bench", list(labels), registry=registry)

    def histogram(
        name: str, labels: Sequence[str], registry: Any, buckets: Sequence[float] | None = None
    ) -> Any:
        extra = {} if buckets is None else {"buckets": buckets}
        return pc.Histogram(name, "bench", list(labels), registry=registry, **extra)

    return Lib(
        "prometheus_client",
        pc.CollectorRegistry,
        counter,
        gauge,
        histogram,
        pc.generate_latest,
        version("prometheus_client"),
    )


def _pytheus() -> Lib:
    from importlib.metadata import version

    from pytheus.exposition import generate_metrics
    from pytheus.metrics import Counter, Gauge, Histogram
    from pytheus.registry import CollectorRegistry

    # keywords only: pytheus 0.6 has an extra ``labels`` parameter in 4th position
    def counter(name: str, labels: Sequence[str], registry: Any) -> Any:
        return Counter(name, "bench", required_labels=list(labels) or None, registry=registry)

    def gauge(name: str, labels: Sequence[str], registry: Any) -> Any:
        return Gauge(name, "bench", required_labels=list(labels) or None, registry=registry)

    def histogram(
        name: str, labels: Sequence[str], registry: Any, buckets: Sequence[float] | None = None
    ) -> Any:
        extra = {} if buckets is None else {"buckets": buckets}
        return Histogram(
            name, "bench", required_labels=list(labels) or None, registry=registry, **extra
        )

    return Lib(
        "pytheus",
        CollectorRegistry,
        counter,
        gauge,
        histogram,
        generate_metrics,
        version("pytheus"),
    )


# --------------------------------------------------------------------------- results
@dataclass
class Row:
    """One operation: a median per library (seconds), and the targets that apply to it."""

    key: str
    title: str
    unit: str  # "ns" (per call) or "ms" (per exposition)
    targets: dict[str, float] = field(default_factory=dict)  # library -> max ratio
    reference: bool = False
    # apytheus only: its ratios are against this row's libraries (a classic observe row)
    baseline: Row | None = None
    below: frozenset[str] = frozenset()  # targets that are strict (ratio < limit)
    samples: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def median(self, lib: str) -> float | None:
        values = self.samples.get(lib)
        return statistics.median(values) if values and lib not in self.errors else None

    def ratio(self, other: str, lib: str = "apytheus") -> float | None:
        """Median of the per-round ratios lib/other (paired: same round, same machine state).

        ``other`` is read from the baseline row if there is one. Falls back to the
        ratio of the medians if the rounds do not pair up.
        """
        base = self.baseline or self
        mine, theirs = self.median(lib), base.median(other)
        if mine is None or theirs is None or theirs == 0:
            return None
        a, b = self.samples[lib], base.samples[other]
        if len(a) == len(b) and all(b):
            return statistics.median(x / y for x, y in zip(a, b, strict=True))
        return mine / theirs

    def bound(self, lib: str) -> str:
        """The target against ``lib`` as shown: ``≤ 0.5``, or ``< 1`` for a strict one."""
        return f"{'<' if lib in self.below else '≤'} {self.targets[lib]:g}"

    def verdicts(self) -> list[tuple[str, float, float | None, bool | None]]:
        """(library, max ratio, measured ratio, met?) for each target of the row."""
        out: list[tuple[str, float, float | None, bool | None]] = []
        for lib, limit in self.targets.items():
            ratio = self.ratio(lib)
            if ratio is None:
                met = None
            else:
                met = ratio < limit if lib in self.below else ratio <= limit
            out.append((lib, limit, ratio, met))
        return out


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _error(row: Row, lib: str, call: str) -> None:
    text = traceback.format_exc()
    row.errors[lib] = f"{call}\n{text}"
    _log(f"!! {lib}: {call} raised:\n{text}")


# --------------------------------------------------------------------------- micro
@dataclass
class Cell:
    """A calibrated timer for one (operation, library)."""

    timer: timeit.Timer
    number: int = 1
    calls: int = 1  # calls of the measured method per statement


def _calibrate(timer: timeit.Timer, target_s: float) -> int:
    """Smallest-ish N with timer.timeit(N) >= target_s (runs the op: doubles as warm-up)."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= target_s:
            return number
        if elapsed < target_s / 20:
            number *= 10
        else:
            return max(number + 1, math.ceil(number * target_s / elapsed * 1.05))


MIXED_STMT = "\n".join(f"observe({value!r})" for value in MIXED_VALUES)
MICRO_KEYS: tuple[str, ...] = ("inc", "child_inc", "labels_inc", "observe", "observe_mixed", "set")
NATIVE_KEYS: tuple[str, ...] = (
    "native_observe",
    "native_only_observe",
    "native_observe_mixed",
    "native_only_observe_mixed",
)


def _micro_cells(lib: Lib) -> dict[str, tuple[str, str, dict[str, Any], int]]:
    """(stmt, setup, globals, calls per stmt) per operation, for one library."""
    counter = lib.counter("bench_requests_total", (), lib.registry())
    labeled = lib.counter("bench_labeled_total", ("method", "route"), lib.registry())
    child = labeled.labels(method="GET", route="/x")
    histogram = lib.histogram("bench_latency_seconds", (), lib.registry())
    mixed = lib.histogram("bench_mixed_seconds", (), lib.registry())
    gauge = lib.gauge("bench_queue", (), lib.registry())
    n = len(MIXED_VALUES)
    cells = {
        "inc": ("inc()", "inc = _m.inc", {"_m": counter}, 1),
        "child_inc": ("inc()", "inc = _m.inc", {"_m": child}, 1),
        "labels_inc": (
            'labels(method="GET", route="/x").inc()',
            "labels = _m.labels",
            {"_m": labeled},
            1,
        ),
        "observe": ("observe(0.3)", "observe = _m.observe", {"_m": histogram}, 1),
        "observe_mixed": (MIXED_STMT, "observe = _m.observe", {"_m": mixed}, n),
        "set": ("set_(42.5)", "set_ = _m.set", {"_m": gauge}, 1),
        "ref_lock": (
            "with lock:\n    x += 1",
            "lock = _lock; x = 0",
            {"_lock": threading.Lock()},
            1,
        ),
        "ref_dict": ("d[k] += 1", "d = {'k': 0}; k = 'k'", {}, 1),
    }
    if lib.native_histogram is not None:  # a histogram per row: each has its own buckets
        for key, native_only, stmt, calls in (
            ("native_observe", False, "observe(0.3)", 1),
            ("native_only_observe", True, "observe(0.3)", 1),
            ("native_observe_mixed", False, MIXED_STMT, n),
            ("native_only_observe_mixed", True, MIXED_STMT, n),
        ):
            metric = lib.native_histogram(f"bench_{key}_seconds", lib.registry(), native_only)
            cells[key] = (stmt, "observe = _m.observe", {"_m": metric}, calls)
    return cells


def run_micro(libs: Sequence[Lib], rows: dict[str, Row], repeats: int, target_s: float) -> None:
    cells: dict[tuple[str, str], Cell] = {}
    for lib in libs:
        try:
            specs = _micro_cells(lib)
        except Exception:
            keys = MICRO_KEYS + (NATIVE_KEYS if lib.native_histogram else ())
            for key in keys:
                _error(rows[key], lib.name, "building the benchmark metrics")
            continue
        for key, (stmt, setup, globs, calls) in specs.items():
            timer = timeit.Timer(stmt, setup, globals=globs)
            try:
                _log(f"calibrating {key:<25} {lib.name}")
                cells[key, lib.name] = Cell(timer, _calibrate(timer, target_s), calls)
            except Exception:
                shown = stmt if calls == 1 else f"{stmt.splitlines()[0]} … ({calls} calls)"
                _error(rows[key], lib.name, f"{shown}  (setup: {setup})")

    names = [lib.name for lib in libs]
    for rnd in range(repeats):
        _log(f"micro round {rnd + 1}/{repeats}")
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for key, row in rows.items():
            if row.unit != "ns":
                continue
            for name in order:
                cell = cells.get((key, name))
                if cell is None:
                    continue
                try:
                    elapsed = cell.timer.timeit(cell.number)
                except Exception:
                    _error(row, name, f"{key}: timed loop")
                    cells.pop((key, name))
                    continue
                row.samples.setdefault(name, []).append(elapsed / (cell.number * cell.calls))


# --------------------------------------------------------------------------- exposition
def _build_counter_registry(lib: Lib) -> Any:
    registry = lib.registry()
    counter = lib.counter("bench_series_total", ("label",), registry)
    for i in range(COUNTER_SERIES):
        counter.labels(label=f"value-{i}").inc()
    return registry


def _build_histogram_registry(lib: Lib, buckets: Sequence[float] | None = None) -> Any:
    registry = lib.registry()
    histogram = lib.histogram("bench_series_seconds", ("label",), registry, buckets)
    for i in range(HISTOGRAM_SERIES):
        histogram.labels(label=f"value-{i}").observe((i % 100) / 40)
    return registry


def _sample_lines(output: Any) -> int:
    text = output.decode() if isinstance(output, bytes) else str(output)
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def run_exposition(libs: Sequence[Lib], rows: dict[str, Row], repeats: int) -> list[str]:
    """Time the exposition rows; return notes (sample counts per output)."""
    import prometheus_client
    import prometheus_client.metrics as pcm

    builders: dict[str, Callable[[Lib], Any]] = {
        "expo_counter": _build_counter_registry,
        "expo_histogram": _build_histogram_registry,
        "expo_histogram_same": lambda lib: _build_histogram_registry(lib, SAME_BUCKETS),
    }
    notes: list[str] = []
    was_on = bool(getattr(pcm, "_use_created", True))
    prometheus_client.disable_created_metrics()
    try:
        for key, build in builders.items():
            row = rows[key]
            calls: dict[str, Callable[[], Any]] = {}
            counts: dict[str, int] = {}
            for lib in libs:
                _log(f"building {key:<19} {lib.name}")
                try:
                    registry = build(lib)
                    call = _bind_expose(lib.expose, registry)
                    counts[lib.name] = _sample_lines(call())  # warm-up, and a sanity check
                except Exception:
                    _error(row, lib.name, f"building or rendering the registry of {key}")
                    continue
                calls[lib.name] = call
            shown = ", ".join(f"{SHORT[name]} {count}" for name, count in counts.items())
            notes.append(f"sample lines, {row.title.replace('`', '')}: {shown}")
            names = list(calls)
            for rnd in range(repeats):
                _log(f"{key} round {rnd + 1}/{repeats}")
                order = names[rnd % len(names) :] + names[: rnd % len(names)] if names else []
                for name in order:
                    gc.collect()
                    call = calls[name]
                    try:
                        start = time.perf_counter()
                        call()
                        elapsed = time.perf_counter() - start
                    except Exception:
                        _error(row, name, f"{key}: timed exposition")
                        continue
                    row.samples.setdefault(name, []).append(elapsed)
            del calls
            gc.collect()
    finally:
        if was_on:
            prometheus_client.enable_created_metrics()
    return notes


def _bind_expose(expose: Callable[[Any], Any], registry: Any) -> Callable[[], Any]:
    def call() -> Any:
        return expose(registry)

    return call


# --------------------------------------------------------------------------- report
def _rows() -> dict[str, Row]:
    rows = [
        Row("inc", "`Counter.inc()`", "ns", {"prometheus_client": 0.6}),
        Row("child_inc", "cached child `child.inc()`", "ns", {"prometheus_client": 0.6}),
        Row(
            "labels_inc",
            '`c.labels(method="GET", route="/x").inc()`',
            "ns",
            {"prometheus_client": 0.5},
        ),
        Row("observe", "`Histogram.observe(0.3)`", "ns", {"prometheus_client": 0.5}),
        Row(
            "observe_mixed",
            f"`Histogram.observe(v)`, {len(MIXED_VALUES)} values from 0.13 ms to 23 s",
            "ns",
        ),
        Row("set", "`Gauge.set(42.5)`", "ns", {"prometheus_client": 0.6}),
        Row("ref_lock", "reference: `with lock: x += 1`", "ns", reference=True),
        Row("ref_dict", "reference: `d[k] += 1`", "ns", reference=True),
        Row(
            "expo_counter",
            f"exposition, {COUNTER_SERIES:,} counter series",
            "ms",
            {"prometheus_client": 0.4, "pytheus": 1.0},
        ),
        Row(
            "expo_histogram",
            f"exposition, {HISTOGRAM_SERIES:,} histogram series (default buckets)",
            "ms",
        ),
        Row(
            "expo_histogram_same",
            f"exposition, {HISTOGRAM_SERIES:,} histogram series (same 11 buckets)",
            "ms",
        ),
    ]
    # the native rows (apytheus only), each right after its classic row: timed next to it
    native = {"apytheus": 2.0, "prometheus_client": 1.0}
    strict = frozenset({"prometheus_client"})
    f = f"native_bucket_factor={NATIVE_FACTOR}"
    mixed = f"{len(MIXED_VALUES)} values"
    by_key: dict[str, Row] = {}
    for row in rows:
        by_key[row.key] = row
        if row.key not in ("observe", "observe_mixed"):
            continue
        stmt = "observe(0.3)`" if row.key == "observe" else f"observe(v)`, {mixed}"
        tail = "" if row.key == "observe" else "_mixed"
        for key, title in (
            (f"native_observe{tail}", f"`Histogram({f}).{stmt}"),
            (f"native_only_observe{tail}", f"`Histogram(buckets=(), {f}).{stmt}"),
        ):
            by_key[key] = Row(key, title, "ns", dict(native), baseline=row, below=strict)
    return by_key


def _fmt_value(row: Row, lib: str) -> str:
    if lib in row.errors:
        return "error"
    value = row.median(lib)
    if value is None:
        return "-"
    return f"{value * 1e9:.1f} ns" if row.unit == "ns" else f"{value * 1e3:.2f} ms"


def _fmt_ratio(row: Row, lib: str) -> str:
    ratio = row.ratio(lib)
    text = "-" if ratio is None else f"{ratio:.2f}"
    return text if lib not in row.targets else f"{text} ({row.bound(lib)})"


def _fmt_verdict(row: Row) -> str:
    if row.reference:
        return "reference"
    verdicts = row.verdicts()
    if not verdicts:
        return "no target"
    parts = []
    for lib, _limit, _ratio, met in verdicts:
        word = "n/a (error)" if met is None else ("met" if met else "NOT met")
        name = f"{SHORT[lib]} classic" if row.baseline else SHORT[lib]
        parts.append(f"{word} vs {name}" if len(verdicts) > 1 else word)
    return ", ".join(parts)


def _ratio_name(row: Row, lib: str) -> str:
    """``apytheus/p_c``, or ``apytheus native/p_c classic`` for a row with a baseline."""
    if row.baseline is None:
        return f"apytheus/{SHORT[lib]}"
    return f"apytheus native/{SHORT[lib]} classic"


def table(rows: dict[str, Row]) -> tuple[list[str], list[list[str]]]:
    header = ["operation", *LIBS, "apytheus/p_c (target)", "apytheus/pytheus (target)", "target"]
    body = [
        [
            row.title,
            *(_fmt_value(row, lib) for lib in LIBS),
            _fmt_ratio(row, "prometheus_client"),
            _fmt_ratio(row, "pytheus"),
            _fmt_verdict(row),
        ]
        for row in rows.values()
        if row.baseline is None
    ]
    return header, body


def native_table(rows: dict[str, Row]) -> tuple[list[str], list[list[str]]]:
    """The native rows (apytheus only), against the classic row with the same values."""
    header = [
        "operation (apytheus only)",
        "apytheus",
        "classic: apytheus",
        "classic: prometheus_client",
        "native/apytheus classic (target)",
        "native/p_c classic (target)",
        "target",
    ]
    body = [
        [
            row.title,
            _fmt_value(row, "apytheus"),
            _fmt_value(row.baseline, "apytheus"),
            _fmt_value(row.baseline, "prometheus_client"),
            _fmt_ratio(row, "apytheus"),
            _fmt_ratio(row, "prometheus_client"),
            _fmt_verdict(row),
        ]
        for row in rows.values()
        if row.baseline is not None
    ]
    return header, body


def render_markdown(header: list[str], body: list[list[str]]) -> str:
    right = [False, True, True, True, True, True, False]
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    lines.extend("| " + " | ".join(cells) + " |" for cells in body)
    return "\n".join(lines)


def render_text(header: list[str], body: list[list[str]]) -> str:
    plain = [[cell.replace("`", "") for cell in cells] for cells in [header, *body]]
    widths = [max(len(r[i]) for r in plain) for i in range(len(header))]
    right = [False, True, True, True, True, True, False]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    out = [line(plain[0]), "  ".join("-" * w for w in widths)]
    out.extend(line(cells) for cells in plain[1:])
    return "\n".join(out)


def _source_digest(package: str) -> str:
    """A short sha256 of a package's .py files: identifies uncommitted source trees."""
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return "unknown"
    root = Path(next(iter(spec.submodule_search_locations)))
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return f"{root} sha256:{digest.hexdigest()[:12]}"


def _load(factory: Callable[[], Lib]) -> Lib | None:
    try:
        return factory()
    except Exception:
        _log(f"!! cannot import {factory.__name__.strip('_')}:\n{traceback.format_exc()}")
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter loops")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--repeats", type=int, help="repeats per cell (default 7, quick 3)")
    parser.add_argument(
        "--target-s", type=float, help="seconds per timed repeat (default 0.2, quick 0.02)"
    )
    args = parser.parse_args(argv)
    repeats: int = args.repeats or (3 if args.quick else 7)
    target_s: float = args.target_s or (0.02 if args.quick else 0.2)

    started = time.perf_counter()
    start_date = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    rows = _rows()
    libs = [lib for lib in map(_load, (_apytheus, _prometheus_client, _pytheus)) if lib]

    run_micro(libs, rows, repeats, target_s)
    notes = run_exposition(libs, rows, repeats)
    elapsed = time.perf_counter() - started

    header, body = table(rows)
    native_header, native_body = native_table(rows)
    versions = ", ".join(f"{lib.name} {lib.version}" for lib in libs)
    meta = [
        f"date: {start_date} (start of the run)",
        f"python: {platform.python_implementation()} {platform.python_version()}",
        f"platform: {platform.platform()}",
        f"cpus: {os.cpu_count()}",
        f"versions: {versions}",
        f"apytheus source: {_source_digest('apytheus')}",
        f"mode: {'quick' if args.quick else 'full'}, {repeats} repeats per cell, "
        f"~{target_s:g} s per timed loop; values are medians; run took {elapsed:.0f} s",
        *notes,
        f"native rows: apytheus only (prometheus_client and pytheus record no native "
        f"histograms); ratios against the classic row with the same values; "
        f"observe(v) cycles {', '.join(map(repr, MIXED_VALUES))}",
    ]
    summary = []
    for row in sorted(rows.values(), key=lambda row: row.baseline is not None):  # native last
        for lib, _limit, ratio, met in row.verdicts():
            shown = "n/a" if ratio is None else f"{ratio:.2f}"
            word = "n/a (error)" if met is None else ("met" if met else "NOT met")
            summary.append(
                f"{row.title.replace('`', '')}: {_ratio_name(row, lib)} = {shown} "
                f"(target {row.bound(lib)}) -> {word}"
            )
    errors = [
        f"{lib} {row.key}: {text}" for row in rows.values() for lib, text in row.errors.items()
    ]

    if args.markdown:
        print("\n".join(f"- {m}" for m in meta))
        print()
        print(render_markdown(header, body))
        print()
        print(render_markdown(native_header, native_body))
        print()
        print("\n".join(f"- {s}" for s in summary))
        if errors:
            print("\nErrors:\n\n```\n" + "\n".join(errors) + "\n```")
    else:
        print("\n".join(meta))
        print()
        print(render_text(header, body))
        print()
        print(render_text(native_header, native_body))
        print()
        print("\n".join(summary))
        if errors:
            print("\nErrors:\n" + "\n".join(errors))
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception:  # not a test: report and exit 0 whatever happens
        traceback.print_exc()
    sys.exit(0)
