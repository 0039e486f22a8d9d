"""The lock-free record path is exact under threads."""

from __future__ import annotations

import threading
from collections.abc import Callable

from apytheus import CollectorRegistry, Counter, Gauge, Histogram


def run_threads(n: int, target: Callable[[], None]) -> None:
    start = threading.Barrier(n)

    def body() -> None:
        start.wait()
        target()

    threads = [threading.Thread(target=body) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_eight_threads_of_100k_increments_give_exactly_800k(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", registry=registry)
    child = Counter("d", "D", ["k"], registry=registry).labels(k="x")

    def work() -> None:
        inc, child_inc = c.inc, child.inc
        for _ in range(100_000):
            inc()
            child_inc()

    run_threads(8, work)
    assert registry.get_sample_value("c_total") == 800_000.0
    assert registry.get_sample_value("d_total", {"k": "x"}) == 800_000.0


def test_gauge_inc_and_dec_from_threads_balance_out(registry: CollectorRegistry) -> None:
    g = Gauge("g", "G", registry=registry)
    g.set(5)

    def work() -> None:
        for _ in range(20_000):
            g.inc(2)
            g.dec()

    run_threads(8, work)
    assert registry.get_sample_value("g") == 5 + 8 * 20_000


def test_histogram_observations_from_threads_are_all_counted(registry: CollectorRegistry) -> None:
    h = Histogram("h", "H", registry=registry, buckets=[1])

    def work() -> None:
        for i in range(20_000):
            h.observe(i % 2 * 2)  # 0 or 2

    run_threads(8, work)
    assert registry.get_sample_value("h_count") == 160_000.0
    assert registry.get_sample_value("h_bucket", {"le": "1.0"}) == 80_000.0
    assert registry.get_sample_value("h_sum") == 160_000.0


def test_collecting_while_threads_record_never_fails(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["k"], registry=registry)
    stop = threading.Event()
    seen: list[float] = []

    def record() -> None:
        i = 0
        while not stop.is_set():
            c.labels(k=str(i % 500)).inc()
            i += 1

    threads = [threading.Thread(target=record) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(20):
            values = [s.value for f in _families(registry) for s in f.samples]
            seen.append(sum(values))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert seen == sorted(seen)  # counters never go backwards between collections


def _families(registry: CollectorRegistry) -> list:  # type: ignore[type-arg]
    from apytheus._collect.read import collect_sync

    return collect_sync(registry, openmetrics=False)


def test_gauge_set_racing_increments_leaves_no_trace_of_them(registry: CollectorRegistry) -> None:
    """While threads add, another sets: every value seen is a whole number, and
    after a final set only what came later counts (no leftover cells)."""
    g = Gauge("g", "G", registry=registry)
    stop = threading.Event()
    seen: list[float] = []

    def setter() -> None:
        while not stop.is_set():
            g.set(0.5)
            seen.append(g._series.value())

    def work() -> None:
        for _ in range(20_000):
            g.inc(1)

    t = threading.Thread(target=setter)
    t.start()
    try:
        run_threads(8, work)
    finally:
        stop.set()
        t.join()
    assert seen and all(v - 0.5 == int(v - 0.5) and 0.5 <= v <= 160_000.5 for v in seen)
    g.inc(1e300)  # a leftover of this size would swamp what follows
    g.set(0.5)
    run_threads(8, lambda: g.inc(0.25))
    assert registry.get_sample_value("g") == 2.5
