"""The buffer turns per-thread cells into exactly-once batches (pure data: no Redis here).

White-box on purpose: what a batch holds, and when it is built again, cannot be
seen from outside without a store; the Redis tests check the same end to end.
Writes go into the cells directly, followed by ``changed()``, as the record
path does.
"""

from __future__ import annotations

import json
from typing import Any

from apytheus._labels import LabelSet
from apytheus.backends import MetricSpec, _redis_merge, _threads
from apytheus.backends._buffer import DeltaBuffer
from apytheus.backends._redis_layout import SEP, series_field
from apytheus.backends._series import HistogramSeries, ScalarSeries
from apytheus.backends._threads import BREATHE

COUNTER = MetricSpec("jobs", "counter", ("queue",))
GAUGE = MetricSpec("level", "gauge", ("room",))
HISTOGRAM = MetricSpec("latency", "histogram", (), bounds=(0.1, 1.0))


def scalar(value: str) -> ScalarSeries:
    return ScalarSeries(LabelSet(("queue",), (value,)))


def test_a_batch_holds_the_delta_since_the_last_acknowledged_one() -> None:
    buffer = DeltaBuffer("w")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[:] = [5.0]
    series.changed()
    first = buffer.take(1.0)
    assert first is not None
    buffer.ack(first, buffer.mark(first))
    series.cells[:] = [7.5]
    series.changed()
    second = buffer.take(2.0)
    assert second is not None and second.seq == first.seq + 1
    (ops,) = second.ops
    assert ops.incr == [('["a"]', 2.5)]


def test_an_unacknowledged_batch_is_sent_again_unchanged() -> None:
    """Same sequence number, same deltas, whatever was recorded since: applied once."""
    buffer = DeltaBuffer("w")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[:] = [3.0]
    series.changed()
    batch = buffer.take(1.0)
    series.cells[:] = [10.0]  # recorded while the batch is in flight
    series.changed()
    assert buffer.take(2.0) is batch
    assert batch is not None
    buffer.ack(batch, buffer.mark(batch))
    after = buffer.take(3.0)
    assert after is not None and after.ops[0].incr == [('["a"]', 7.0)]


def test_nothing_changed_means_no_batch() -> None:
    buffer = DeltaBuffer("w")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[:] = [1.0]
    series.changed()
    batch = buffer.take(1.0)
    assert batch is not None
    buffer.ack(batch, buffer.mark(batch))
    assert buffer.take(2.0) is None


def test_a_removal_travels_in_the_next_batch_ahead_of_its_updates() -> None:
    buffer = DeltaBuffer("w")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[:] = [1.0]
    series.changed()
    first = buffer.take(1.0)
    assert first is not None
    buffer.ack(first, buffer.mark(first))
    buffer.remove(COUNTER, series.labels)
    again = scalar("a")  # made again before the next batch
    buffer.track(COUNTER, again)
    again.cells[:] = [4.0]
    again.changed()
    batch = buffer.take(2.0)
    assert batch is not None
    (ops,) = batch.ops
    assert ops.deletes == ['["a"]']
    assert ops.incr == [('["a"]', 4.0)]  # written anew after the delete, from 0


def test_a_histogram_sends_its_buckets_and_sum_as_deltas() -> None:
    buffer = DeltaBuffer("w")
    series = HistogramSeries(LabelSet((), ()), HISTOGRAM.bounds)
    buffer.track(HISTOGRAM, series)
    cell = series.new_cell()
    cell[0] += 1  # one observation <= 0.1
    cell[2] += 1  # one above 1.0
    cell[-1] += 5.05
    series.cells[1] = cell
    series.changed()
    batch = buffer.take(1.0)
    assert batch is not None
    assert dict(batch.ops[0].incr) == {"[]\t0.1": 1.0, "[]\t+Inf": 1.0, "[]\tsum": 5.05}


def test_a_gauge_is_sent_as_this_workers_value_only_when_written() -> None:
    buffer = DeltaBuffer("w1")
    series = ScalarSeries(LabelSet(("room",), ("a",)))
    buffer.track(GAUGE, series)
    series.set(21.5)
    batch = buffer.take(1.0)
    assert batch is not None
    assert batch.ops[0].sets == [('["a"]\tw1', "21.5")]
    buffer.ack(batch, buffer.mark(batch))
    assert buffer.take(2.0) is None  # not written again: nothing to send
    series.set(21.5)  # written again, same value: `sum` needs nothing new
    assert buffer.take(3.0) is None


def test_after_fork_the_child_never_sends_its_parents_totals() -> None:
    buffer = DeltaBuffer("parent")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[:] = [100.0]
    series.changed()
    buffer.rebase("child")  # as the fork handler does in the child
    series.cells[:] = [101.0]
    series.changed()
    batch = buffer.take(1.0)
    assert batch is not None and buffer.worker == "child"
    assert batch.ops[0].incr == [('["a"]', 1.0)]


def test_a_dropped_series_is_forgotten_without_a_removal() -> None:
    """A metric nobody references any more: its spec dies, its entries with it."""
    buffer = DeltaBuffer("w")
    spec = MetricSpec("tmp", "counter")
    buffer.track(spec, ScalarSeries(LabelSet((), ())))
    assert buffer.size() == 1
    del spec
    assert buffer.size() == 0


class CountingSeries(ScalarSeries):
    """A series that counts how often its cells are read."""

    __slots__ = ("_cells", "reads")

    @property
    def cells(self) -> list[float]:
        self.reads += 1
        return self._cells

    @cells.setter
    def cells(self, value: list[float]) -> None:
        self.reads = 0
        self._cells = value


def test_a_batch_reads_only_the_series_written_since_the_last_one() -> None:
    """What a flush costs follows what changed, not what the buffer holds."""
    buffer = DeltaBuffer("w")
    held = [CountingSeries(LabelSet(("queue",), (str(i),))) for i in range(1000)]
    for series in held:
        buffer.track(COUNTER, series)
        series.cells[:] = [1.0]
    first = buffer.take(1.0)
    assert first is not None
    buffer.ack(first, buffer.mark(first))
    for series in held:
        series.reads = 0
    assert buffer.take(2.0) is None  # nothing written: no series read at all
    assert sum(s.reads for s in held) == 0
    held[7].cells[:] = [2.0]
    held[7].changed()
    held[7].reads = 0
    batch = buffer.take(3.0)
    assert batch is not None and batch.ops[0].incr == [('["7"]', 1.0)]
    assert [i for i, s in enumerate(held) if s.reads] == [7]


def test_a_write_that_lands_while_the_batch_is_built_is_in_the_next_one() -> None:
    """The series is armed again before it is read: a later write queues it again."""
    buffer = DeltaBuffer("w")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[:] = [1.0]
    first = buffer.take(1.0)
    assert first is not None and series.sink is not None  # armed by the read
    buffer.ack(first, buffer.mark(first))
    series.cells[:] = [3.0]  # a write after the read
    series.changed()
    assert series.sink is None  # queued once: further writes pay nothing
    second = buffer.take(2.0)
    assert second is not None and second.ops[0].incr == [('["a"]', 2.0)]


def test_a_gauge_function_is_read_at_every_batch() -> None:
    buffer = DeltaBuffer("w1")
    series = ScalarSeries(LabelSet(("room",), ("a",)))
    buffer.track(GAUGE, series)
    level = [1.0]
    series.function = lambda: level[0]
    series.changed()
    first = buffer.take(1.0)
    assert first is not None and first.ops[0].sets == [('["a"]\tw1', "1.0")]
    buffer.ack(first, buffer.mark(first))
    level[0] = 2.0  # no write at all: the function changed its answer
    second = buffer.take(2.0)
    assert second is not None and second.ops[0].sets == [('["a"]\tw1', "2.0")]


def test_a_record_queuing_a_series_during_a_switch_leaves_it_queued_for_the_successor() -> None:
    """A thread inside changed() (it read sink, not yet cleared it) while the backend is
    switched: its append must land where the successor looks, or the series is never
    queued again."""
    old = DeltaBuffer("w")
    series = scalar("a")
    old.track(COUNTER, series)
    series.cells[:] = [1.0]
    first = old.take(1.0)
    assert first is not None
    old.ack(first, old.mark(first))
    sink = series.sink  # the recording thread is inside changed(): it read the sink...
    assert sink is not None
    new = DeltaBuffer("w")
    new.adopt(old.handover())
    new.track(COUNTER, series)
    second = new.take(2.0)  # the successor reads the series and arms it again
    if second is not None:
        new.ack(second, new.mark(second))
    series.sink = None  # ...and only now clears it and queues the series
    sink.append(series)
    series.cells[0] += 10.0  # a later write: sink is None, so it queues nothing itself
    if series.sink is not None:
        series.changed()
    third = new.take(3.0)
    assert third is not None and third.ops[0].incr == [('["a"]', 10.0)]


def test_a_series_field_is_its_label_values_as_compact_json_whatever_they_hold() -> None:
    """The buffer makes fields when it needs them; the quick path writes what json would."""
    odd = ['"', "\\", "\n", "\t", "\x7f", "\u2028", "\x00", "\x1f", "\u00a0", "é", "😀", " "]
    cases: list[tuple[str, ...]] = [(), ("",), ("/a", "b c"), *((f"x{c}y", "ok") for c in odd)]
    for values in cases:
        labels = LabelSet(tuple(f"l{i}" for i in range(len(values))), tuple(values))
        expected = json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
        assert series_field(labels) == expected


def test_a_big_batch_lets_the_event_loop_in_as_it_is_built(monkeypatch: Any) -> None:
    """A flush runs in a worker thread, which keeps the GIL for up to 5 ms at a time
    unless it gives it up: building a batch of N series offers it every BREATHE
    series (given up there once BREATHE_S of work went by: here, at once)."""
    calls: list[int] = []
    monkeypatch.setattr(_threads, "pause", lambda: calls.append(1))
    monkeypatch.setattr(_threads, "BREATHE_S", 0.0)
    buffer = DeltaBuffer("w")
    for i in range(2_000):
        series = scalar(str(i))
        buffer.track(COUNTER, series)
        series.cells[:] = [1.0]
    batch = buffer.take(1.0)
    assert batch is not None and len(batch.ops[0].incr) == 2_000
    assert len(calls) == 2_000 // BREATHE


def test_a_big_read_lets_the_event_loop_in_as_it_is_merged(monkeypatch: Any) -> None:
    """A read's merge runs in a worker thread too: counters and histograms alike."""
    calls: list[int] = []
    monkeypatch.setattr(_threads, "pause", lambda: calls.append(1))
    monkeypatch.setattr(_threads, "BREATHE_S", 0.0)
    n = 5_000
    counters = {json.dumps([str(i)]).encode(): b"1" for i in range(n)}
    found = _redis_merge.Merge(COUNTER, {}).merge(counters, None, set())
    assert sum(s.value() for s in found if isinstance(s, ScalarSeries)) == n
    assert len(calls) == n // BREATHE
    calls.clear()
    spec = MetricSpec("latency", "histogram", ("queue",), bounds=(0.1, 1.0))
    fields = {
        f"{json.dumps([str(i)])}{SEP}{part}".encode(): b"1"
        for i in range(n)
        for part in ("0.1", "1.0", "+Inf", "sum")
    }
    histograms = _redis_merge.Merge(spec, {}).merge(fields, None, set())
    assert len(histograms) == n
    assert len(calls) == len(fields) // BREATHE


def test_a_read_updates_the_series_it_made_in_place() -> None:
    """A second read stores into the cells the first read made: a new list per series
    and read would be promoted by the garbage collector (at 100k series, a full
    collection every scrape or two), and two overlapping reads still leave one cell."""
    merge = _redis_merge.Merge(COUNTER, {})
    first = merge.merge({b'["a"]': b"1", b'["b"]': b"2"}, None, set())
    cells = [s.cells for s in first if isinstance(s, ScalarSeries)]
    second = [
        s
        for s in merge.merge({b'["a"]': b"5", b'["b"]': b"7"}, None, set())
        if isinstance(s, ScalarSeries)
    ]
    assert [s.cells for s in second] == [[5.0], [7.0]]
    assert all(a is b.cells for a, b in zip(cells, second, strict=True))
