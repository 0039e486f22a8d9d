"""Threads that come and go leave no cells behind, and lose or double nothing.

A series keeps one cell per thread that wrote it, at the thread's slot; a
thread that ends hands its slot, cells and all, to the next new thread (see
``apytheus.backends._thread_cells``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Gauge, Histogram
from apytheus.backends import _thread_cells
from apytheus.backends._series import HistogramSeries
from apytheus.backends.redis import RedisBackend
from apytheus.exposition import generate_metrics

THREADS = 10_000  # short-lived threads, started and joined AT_ONCE at a time
AT_ONCE = 50
# Threads that may record at the same time: AT_ONCE, or a pool's 4, plus the test's
# own thread and the one scraping or flushing meanwhile.
MOST = AT_ONCE + 2
POOLS = 200  # ThreadPoolExecutors made and shut down, each running JOBS jobs
JOBS = 8
RECORDS = THREADS + POOLS * JOBS
OBSERVED = (0.5, 3.0, 0.25)  # exact in binary: sums are exact in any order


class Metrics:
    """One of each kind, and how to record into all of them once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter("c", "C", ["k"], registry=registry)
        self.halves = Counter("halves", "Halves", registry=registry)
        self.classic = Histogram("h", "H", buckets=[1.0], registry=registry)
        self.native = Histogram("n", "N", native_bucket_factor=1.1, registry=registry)
        self.gauge = Gauge("g", "G", registry=registry)
        self.gauge.set(5)
        self.idents: list[int] = []

    def record(self) -> None:
        self.idents.append(threading.get_ident())  # list.append: atomic
        self.counter.labels(k="a").inc()
        self.counter.labels(k="b").inc(2)
        self.halves.inc(0.5)
        for v in OBSERVED:
            self.classic.observe(v)
            self.native.observe(v)
        self.gauge.inc(3)
        self.gauge.dec(1)

    def series(self) -> list[Any]:
        return [
            self.counter.labels(k="a")._series,
            self.counter.labels(k="b")._series,
            self.halves._series,
            self.classic._series,
            self.native._series,
            self.gauge._series,
        ]

    def assert_bounded(self) -> None:
        """Every series holds at most a cell per thread that could record at once."""
        for series in self.series():
            assert len(series.cells) <= MOST, (series.labels, len(series.cells))
        assert _thread_cells.slots_in_use() <= threading.active_count()


def churn(metrics: Metrics, between: Callable[[], None]) -> None:
    """THREADS short-lived threads, then POOLS recreated pools, all recording once per job."""
    for _ in range(THREADS // AT_ONCE):
        threads = [threading.Thread(target=metrics.record) for _ in range(AT_ONCE)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        between()
    for _ in range(POOLS):
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(JOBS):
                pool.submit(metrics.record)
        between()


@contextmanager
def meanwhile(action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` over and over in a thread of its own while the block runs.

    It pauses a millisecond between runs: a thread that never lets go of the GIL
    would slow every thread start and join down to its switch interval.
    """
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.wait(0.001):
                action()
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    t = threading.Thread(target=loop)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
    assert not errors, errors


def expected_native(registry: CollectorRegistry) -> dict[int, float]:
    """The native buckets of OBSERVED, each observed RECORDS times."""
    once = Histogram("once", "Once", native_bucket_factor=1.1, registry=registry)
    for v in OBSERVED:
        once.observe(v)
    return {key: count * RECORDS for key, count in once._series.native_snapshot().items()}


def assert_totals(registry: CollectorRegistry, native: dict[int, float]) -> None:
    get = registry.get_sample_value
    assert get("c_total", {"k": "a"}) == RECORDS
    assert get("c_total", {"k": "b"}) == 2 * RECORDS
    assert get("halves_total") == 0.5 * RECORDS
    assert get("h_count") == len(OBSERVED) * RECORDS
    assert get("h_bucket", {"le": "1.0"}) == 2 * RECORDS
    assert get("h_sum") == sum(OBSERVED) * RECORDS
    assert get("n_count") == len(OBSERVED) * RECORDS
    assert get("n_sum") == sum(OBSERVED) * RECORDS
    assert get("g") == 5 + 2 * RECORDS


def test_thread_churn_in_process_keeps_cells_bounded_and_totals_exact(
    registry: CollectorRegistry,
) -> None:
    """10,000 short-lived threads and 200 pools, scraped all along: each series holds at
    most a cell per thread that recorded at the same time, and the totals are exact."""
    metrics = Metrics(registry)
    native = expected_native(registry)
    seen: list[float] = []

    def scrape() -> None:  # reads while threads end and new ones take their slots
        generate_metrics(registry)
        seen.append(metrics.halves._series.value())

    def between() -> None:
        generate_metrics(registry)
        metrics.assert_bounded()

    with meanwhile(scrape):
        churn(metrics, between)
    metrics.assert_bounded()
    assert_totals(registry, native)
    assert metrics.native._series.native_snapshot() == native
    assert seen == sorted(seen)  # a thread's end never makes a counter go back
    assert len(set(metrics.idents)) < len(metrics.idents)  # idents were reused


def test_thread_churn_on_redis_keeps_cells_bounded_and_sends_exact_deltas(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """The same churn, flushed to Redis all along: what the buffer sent stays exact
    as slots change hands, and Redis holds the exact totals."""
    backend = make_redis_backend(redis_server)
    metrics = Metrics(registry)
    native = expected_native(registry)

    def between() -> None:
        assert backend.flush_sync()
        metrics.assert_bounded()

    with meanwhile(lambda: None if backend.flush_sync() else None):
        churn(metrics, between)
    assert backend.flush_sync()
    metrics.assert_bounded()
    assert_totals(registry, native)
    spec = metrics.native._family.spec
    (merged,) = backend.collect([spec])[spec]
    assert isinstance(merged, HistogramSeries)
    assert merged.native_snapshot() == native


def test_a_thread_takes_an_ended_threads_slot_never_a_live_ones(
    registry: CollectorRegistry,
) -> None:
    """Threads started one after the other share one slot; threads alive at the same
    time never do, so every slot has a single writer."""
    c = Counter("c", "C", registry=registry)
    c.inc()  # this thread's slot, taken first
    slots: list[int] = []

    def record() -> None:
        c.inc()
        slots.append(_thread_cells.this_thread.slot)

    for _ in range(200):
        _in_thread(record)
    assert len(set(slots)) == 1  # each ended before the next began: one slot, reused
    assert sorted(x for x in c._series.cells if x) == [1.0, 200.0]  # this thread's, theirs
    live: list[int] = []
    together = threading.Barrier(20)

    def hold() -> None:
        c.inc()
        live.append(_thread_cells.this_thread.slot)
        together.wait(timeout=30)  # all 20 alive (and holding their slots) at once

    threads = [threading.Thread(target=hold) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(live)) == 20  # twenty live threads, twenty slots
    assert _thread_cells.this_thread.slot not in live
    assert registry.get_sample_value("c_total") == 221


def test_threads_that_end_leave_nothing_when_nothing_scrapes(registry: CollectorRegistry) -> None:
    """A process that is never scraped keeps its cells bounded too: nothing waits for a
    scrape or flush to tidy them."""
    c = Counter("c", "C", registry=registry)
    for _ in range(1000):
        _in_thread(c.inc)
    assert [x for x in c._series.cells if x] == [1000.0]  # one cell, handed on 999 times
    assert len(c._series.cells) <= _thread_cells.slots_in_use() + 1
    assert c._series.value() == 1000


def _in_thread(fn: Callable[[], None]) -> None:
    t = threading.Thread(target=fn)
    t.start()
    t.join()


@contextmanager
def live_thread(fn: Callable[[], None]) -> Iterator[None]:
    """A thread that runs ``fn`` and then stays alive while the block runs."""
    done, stop = threading.Event(), threading.Event()

    def body() -> None:
        fn()
        done.set()
        stop.wait()

    t = threading.Thread(target=body)
    t.start()
    done.wait()
    try:
        yield
    finally:
        stop.set()
        t.join()


def test_a_threads_end_changes_no_total_not_even_its_last_bit(
    registry: CollectorRegistry,
) -> None:
    """(0.1 + 0.2) + 0.3 is 0.6000000000000001, (0.2 + 0.3) + 0.1 is 0.6: a total read
    in another order after a thread ended could seem to go back. Cells stay where
    they are, so the sums are the same, bit for bit."""
    c = Counter("c", "C", registry=registry)
    h = Histogram("h", "H", buckets=[1.0], registry=registry)

    def record(value: float) -> Callable[[], None]:
        def body() -> None:
            c.inc(value)
            h.observe(value)

        return body

    record(0.1)()
    with live_thread(record(0.2)):
        _in_thread(record(0.3))  # ends while the 0.2 thread lives
        before = (c._series.value(), h._series.snapshot()[1])
    assert before == (0.6000000000000001, 0.6000000000000001)
    _in_thread(record(0.0))  # takes an ended thread's slot and cells
    generate_metrics(registry)
    assert (c._series.value(), h._series.snapshot()[1]) == before


def test_a_gauge_set_forgets_the_adds_of_ended_threads(registry: CollectorRegistry) -> None:
    g = Gauge("g", "G", registry=registry)
    _in_thread(lambda: g.inc(10))
    with live_thread(lambda: g.inc(100)):
        assert registry.get_sample_value("g") == 110
    g.set(7)
    for _ in range(5):
        _in_thread(g.inc)
    assert len(g._series.cells) <= _thread_cells.slots_in_use() + 1
    assert registry.get_sample_value("g") == 12
