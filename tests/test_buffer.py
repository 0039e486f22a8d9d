"""The buffer turns per-thread cells into exactly-once batches (pure data: no Redis here).

White-box on purpose: what a batch holds, and when it is built again, cannot be
seen from outside without a store; the Redis tests check the same end to end.
"""

from __future__ import annotations

from apytheus._labels import LabelSet
from apytheus.backends import MetricSpec
from apytheus.backends._buffer import DeltaBuffer
from apytheus.backends._series import HistogramSeries, ScalarSeries

COUNTER = MetricSpec("jobs", "counter", ("queue",))
GAUGE = MetricSpec("level", "gauge", ("room",))
HISTOGRAM = MetricSpec("latency", "histogram", (), bounds=(0.1, 1.0))


def scalar(value: str) -> ScalarSeries:
    return ScalarSeries(LabelSet((("queue", value),)))


def test_a_batch_holds_the_delta_since_the_last_acknowledged_one() -> None:
    buffer = DeltaBuffer("w")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[1] = 5.0
    first = buffer.take(1.0)
    assert first is not None
    buffer.ack(first, buffer.mark(first))
    series.cells[1] = 7.5
    second = buffer.take(2.0)
    assert second is not None and second.seq == first.seq + 1
    (ops,) = second.ops
    assert ops.incr == [('["a"]', 2.5)]


def test_an_unacknowledged_batch_is_sent_again_unchanged() -> None:
    """Same sequence number, same deltas, whatever was recorded since: applied once."""
    buffer = DeltaBuffer("w")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[1] = 3.0
    batch = buffer.take(1.0)
    series.cells[1] = 10.0  # recorded while the batch is in flight
    assert buffer.take(2.0) is batch
    assert batch is not None
    buffer.ack(batch, buffer.mark(batch))
    after = buffer.take(3.0)
    assert after is not None and after.ops[0].incr == [('["a"]', 7.0)]


def test_nothing_changed_means_no_batch() -> None:
    buffer = DeltaBuffer("w")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[1] = 1.0
    batch = buffer.take(1.0)
    assert batch is not None
    buffer.ack(batch, buffer.mark(batch))
    assert buffer.take(2.0) is None


def test_a_removal_travels_in_the_next_batch_ahead_of_its_updates() -> None:
    buffer = DeltaBuffer("w")
    series = scalar("a")
    buffer.track(COUNTER, series)
    series.cells[1] = 1.0
    first = buffer.take(1.0)
    assert first is not None
    buffer.ack(first, buffer.mark(first))
    buffer.remove(COUNTER, series.labels)
    again = scalar("a")  # made again before the next batch
    buffer.track(COUNTER, again)
    again.cells[1] = 4.0
    batch = buffer.take(2.0)
    assert batch is not None
    (ops,) = batch.ops
    assert ops.deletes == ['["a"]']
    assert ops.incr == [('["a"]', 4.0)]  # written anew after the delete, from 0


def test_a_histogram_sends_its_buckets_and_sum_as_deltas() -> None:
    buffer = DeltaBuffer("w")
    series = HistogramSeries(LabelSet(()), HISTOGRAM.bounds)
    buffer.track(HISTOGRAM, series)
    cell = series.new_cell()
    cell[0] += 1  # one observation <= 0.1
    cell[2] += 1  # one above 1.0
    cell[-1] += 5.05
    series.cells[1] = cell
    batch = buffer.take(1.0)
    assert batch is not None
    assert dict(batch.ops[0].incr) == {"[]\t0.1": 1.0, "[]\t+Inf": 1.0, "[]\tsum": 5.05}


def test_a_gauge_is_sent_as_this_workers_value_only_when_written() -> None:
    buffer = DeltaBuffer("w1")
    series = ScalarSeries(LabelSet((("room", "a"),)))
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
    series.cells[1] = 100.0
    buffer.rebase("child")  # as the fork handler does in the child
    series.cells[1] = 101.0
    batch = buffer.take(1.0)
    assert batch is not None and buffer.worker == "child"
    assert batch.ops[0].incr == [('["a"]', 1.0)]


def test_a_dropped_series_is_forgotten_without_a_removal() -> None:
    """A metric nobody references any more: its spec dies, its entries with it."""
    buffer = DeltaBuffer("w")
    spec = MetricSpec("tmp", "counter")
    buffer.track(spec, ScalarSeries(LabelSet(())))
    assert buffer.size() == 1
    del spec
    assert buffer.size() == 0
