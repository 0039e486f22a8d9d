"""Threads that come and go leave no cells behind, and lose or double nothing.

A series keeps one cell per thread that wrote it; the cells of threads that
ended are folded into one base cell at scrape and flush time (see
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
from apytheus.backends._series import BASE, HistogramSeries
from apytheus.backends.redis import RedisBackend
from apytheus.exposition import generate_metrics

THREADS = 10_000  # short-lived threads, started and joined AT_ONCE at a time
AT_ONCE = 50
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
        """Every series holds at most one cell per live thread, plus the base cell."""
        live = threading.active_count()
        for series in self.series():
            assert len(series.cells) <= live + 1, (series.labels, len(series.cells), live)


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
    """10,000 short-lived threads and 200 pools, scraped all along: after every scrape each
    series holds at most a cell per live thread plus one, and the totals are exact."""
    metrics = Metrics(registry)
    native = expected_native(registry)
    seen: list[float] = []

    def scrape() -> None:  # folds while threads end
        generate_metrics(registry)
        seen.append(metrics.halves._series.value())

    def between() -> None:
        generate_metrics(registry)
        metrics.assert_bounded()

    with meanwhile(scrape):
        churn(metrics, between)
    generate_metrics(registry)
    for series in metrics.series():
        assert list(series.cells) == [BASE]  # the base cell alone: no live thread recorded
    assert_totals(registry, native)
    assert metrics.native._series.native_snapshot() == native
    assert seen == sorted(seen)  # a fold never makes a counter go back
    assert len(set(metrics.idents)) < len(metrics.idents)  # idents were reused


def test_thread_churn_on_redis_keeps_cells_bounded_and_sends_exact_deltas(
    redis_server: RedisServer,
    make_redis_backend: Callable[..., RedisBackend],
    registry: CollectorRegistry,
) -> None:
    """The same churn, flushed to Redis all along: what the buffer sent stays exact
    as cells fold, and Redis holds the exact totals."""
    backend = make_redis_backend(redis_server)
    metrics = Metrics(registry)
    native = expected_native(registry)

    def between() -> None:
        assert backend.flush_sync()
        metrics.assert_bounded()

    with meanwhile(lambda: None if backend.flush_sync() else None):
        churn(metrics, between)
    assert backend.flush_sync()
    for series in metrics.series():
        assert list(series.cells) == [BASE]
    assert_totals(registry, native)
    spec = metrics.native._family.spec
    (merged,) = backend.collect([spec])[spec]
    assert isinstance(merged, HistogramSeries)
    assert merged.native_snapshot() == native


def test_a_thread_with_a_reused_ident_gets_cells_of_its_own(registry: CollectorRegistry) -> None:
    """A new thread may get an ended thread's ident; it never writes the ended thread's
    cell, so folding that cell races with no one."""
    c = Counter("c", "C", registry=registry)
    keys: list[tuple[int, str]] = []

    def record() -> None:
        c.inc()
        keys.append((threading.get_ident(), _thread_cells.this_thread.key))

    for _ in range(200):
        t = threading.Thread(target=record)
        t.start()
        t.join()
    idents = [ident for ident, _ in keys]
    assert len(set(idents)) < len(idents)  # the system reused idents…
    assert len({key for _, key in keys}) == len(keys)  # …but every thread had its own key
    generate_metrics(registry)
    assert list(c._series.cells) == [BASE]
    assert registry.get_sample_value("c_total") == 200


def test_threads_that_end_while_a_fold_runs_are_folded_by_the_next(
    registry: CollectorRegistry,
) -> None:
    c = Counter("c", "C", registry=registry)
    with _thread_cells._fold_lock:  # a fold is running
        for _ in range(_thread_cells.FOLD_EVERY + 10):  # enough to make ending threads try
            t = threading.Thread(target=c.inc)
            t.start()
            t.join()
        assert len(c._series.cells) > 1  # nothing folded: the running fold has the lock
        assert c._series.value() == _thread_cells.FOLD_EVERY + 10
    generate_metrics(registry)
    assert list(c._series.cells) == [BASE]
    assert registry.get_sample_value("c_total") == _thread_cells.FOLD_EVERY + 10


def test_ending_threads_fold_when_nothing_scrapes(registry: CollectorRegistry) -> None:
    """A process that is never scraped keeps its cells bounded too."""
    c = Counter("c", "C", registry=registry)
    generate_metrics(registry)  # nothing queued from earlier tests
    for _ in range(3 * _thread_cells.FOLD_EVERY):
        t = threading.Thread(target=c.inc)
        t.start()
        t.join()
    assert len(c._series.cells) <= _thread_cells.FOLD_EVERY + 1
    assert c._series.value() == 3 * _thread_cells.FOLD_EVERY


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


def test_a_float_total_never_reads_lower_after_a_fold(registry: CollectorRegistry) -> None:
    """(0.1 + 0.2) + 0.3 is 0.6000000000000001, (0.2 + 0.3) + 0.1 is 0.6: folding the
    first thread's 0.1 would add up the same cells in that other order."""
    c = Counter("c", "C", registry=registry)
    h = Histogram("h", "H", buckets=[1.0], registry=registry)

    def record(value: float) -> Callable[[], None]:
        def body() -> None:
            c.inc(value)
            h.observe(value)

        return body

    _in_thread(record(0.1))  # ends: its cells get folded
    record(0.2)()
    with live_thread(record(0.3)):
        before = (c._series.value(), h._series.snapshot()[1])
        assert before == (0.6000000000000001, 0.6000000000000001)
        generate_metrics(registry)
        assert len(c._series.cells) == 3  # the base cell and the two live threads'
        after = (c._series.value(), h._series.snapshot()[1])
    assert after[0] >= before[0] and after[1] >= before[1]
    assert after[0] - before[0] < 1e-15 and after[1] - before[1] < 1e-15


def test_a_gauge_set_forgets_the_adds_of_ended_threads_folded_or_not(
    registry: CollectorRegistry,
) -> None:
    g = Gauge("g", "G", registry=registry)
    _in_thread(lambda: g.inc(10))
    generate_metrics(registry)  # folded into the base cell
    _in_thread(lambda: g.inc(100))  # ended, not folded yet
    assert registry.get_sample_value("g") == 110
    g.set(7)
    for _ in range(5):
        _in_thread(g.inc)
    generate_metrics(registry)
    assert list(g._series.cells) == [BASE]
    assert registry.get_sample_value("g") == 12
