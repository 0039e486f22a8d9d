"""Timers, in-progress gauges and exception counters on def and async def."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import anyio
import pytest

import apytheus._record.timers as instrument
from apytheus import CollectorRegistry, Counter, Gauge, Histogram, Summary


class FakeClock:
    """A clock the test moves by hand, so durations are exact."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(instrument, "clock", fake)
    yield fake


def hist_sum(registry: CollectorRegistry, name: str = "h") -> tuple[float | None, float | None]:
    return registry.get_sample_value(f"{name}_count"), registry.get_sample_value(f"{name}_sum")


def test_time_as_with_block_observes_the_elapsed_seconds(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    h = Histogram("h", "H", registry=registry)
    with h.time():
        clock.now += 0.25
    assert hist_sum(registry) == (1.0, 0.25)


async def test_time_as_async_with_block_observes_the_elapsed_seconds(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    s = Summary("s", "S", registry=registry)
    async with s.time():
        await anyio.lowlevel.checkpoint()
        clock.now += 1.5
    assert hist_sum(registry, "s") == (1.0, 1.5)


async def test_decorated_async_function_measures_the_awaited_body(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    h = Histogram("h", "H", registry=registry)

    @h
    async def handler() -> str:
        await anyio.lowlevel.checkpoint()
        clock.now += 2.0
        return "done"

    assert inspect.iscoroutinefunction(handler)
    coro = handler()
    clock.now += 50  # time between creating the coroutine and awaiting it is not measured
    assert await coro == "done"
    assert hist_sum(registry) == (1.0, 2.0)


def test_decorated_plain_function_is_timed_and_keeps_its_metadata(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    h = Histogram("h", "H", registry=registry)

    @h.time()
    def work(x: int) -> int:
        """Doc."""
        clock.now += 0.5
        return x * 2

    assert work(3) == 6
    assert work.__name__ == "work" and work.__doc__ == "Doc."
    assert not inspect.iscoroutinefunction(work)
    assert hist_sum(registry) == (1.0, 0.5)


async def test_timer_still_observes_when_the_body_raises(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    h = Histogram("h", "H", registry=registry)

    @h
    async def failing() -> None:
        clock.now += 0.1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await failing()
    with pytest.raises(KeyError), h.time():
        clock.now += 0.2
        raise KeyError("x")
    count, total = hist_sum(registry)
    assert count == 2.0 and total == pytest.approx(0.3)


async def test_timer_and_inprogress_are_correct_when_the_task_is_cancelled(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    h = Histogram("h", "H", registry=registry)
    g = Gauge("inflight", "In flight", registry=registry)
    started = anyio.Event()

    @g(track_inprogress=True)
    @h
    async def slow() -> None:
        clock.now += 0.75
        started.set()
        await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(slow)
        await started.wait()
        assert registry.get_sample_value("inflight") == 1.0
        tg.cancel_scope.cancel()
    assert registry.get_sample_value("inflight") == 0.0
    assert hist_sum(registry) == (1.0, 0.75)


async def test_track_inprogress_counts_concurrent_async_calls(registry: CollectorRegistry) -> None:
    g = Gauge("inflight", "In flight", registry=registry)
    release = anyio.Event()
    seen: list[float | None] = []

    async def handler() -> None:
        async with g.track_inprogress():
            await release.wait()

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(handler)
        await anyio.wait_all_tasks_blocked()
        seen.append(registry.get_sample_value("inflight"))
        release.set()
    assert seen == [3.0]
    assert registry.get_sample_value("inflight") == 0.0


def test_gauge_decorator_without_arguments_sets_the_duration(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    g = Gauge("last_run_seconds", "Duration of the last run", registry=registry)

    @g
    def run() -> None:
        clock.now += 4.0

    run()
    assert registry.get_sample_value("last_run_seconds") == 4.0
    with g.time():
        clock.now += 1.0
    assert registry.get_sample_value("last_run_seconds") == 1.0


def test_count_exceptions_counts_only_the_given_types_and_reraises(
    registry: CollectorRegistry,
) -> None:
    c = Counter("failures", "Failures", registry=registry)
    with pytest.raises(ValueError), c.count_exceptions(ValueError):
        raise ValueError
    with pytest.raises(KeyError), c.count_exceptions(ValueError):
        raise KeyError
    with c.count_exceptions():
        pass
    assert registry.get_sample_value("failures_total") == 1.0


async def test_counter_decorators_count_exceptions_of_async_functions(
    registry: CollectorRegistry,
) -> None:
    c = Counter("failures", "Failures", registry=registry)
    only_type = Counter("type_failures", "Failures", registry=registry)

    @c
    async def a() -> None:
        raise RuntimeError

    @only_type(exceptions=(TypeError,))
    async def b(exc: type[Exception]) -> None:
        raise exc

    for call in (a(), b(TypeError), b(ValueError)):
        with pytest.raises(Exception):  # noqa: B017 - each raises its own type
            await call
    async with c.count_exceptions():
        pass
    assert registry.get_sample_value("failures_total") == 1.0
    assert registry.get_sample_value("type_failures_total") == 1.0


def test_count_exceptions_on_a_plain_function_as_decorator(registry: CollectorRegistry) -> None:
    c = Counter("failures", "Failures", registry=registry)

    @c.count_exceptions()
    def f(fail: bool) -> str:
        if fail:
            raise OSError
        return "ok"

    assert f(False) == "ok"
    with pytest.raises(OSError):
        f(True)
    assert registry.get_sample_value("failures_total") == 1.0


def test_labeled_child_timer_records_into_its_series(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    h = Histogram("h", "H", ["route"], registry=registry)
    with h.labels(route="/a").time():
        clock.now += 0.3
    assert registry.get_sample_value("h_count", {"route": "/a"}) == 1.0
