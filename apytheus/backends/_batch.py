"""STORE: what the buffer hands the store: a batch of per-metric operations and its checks.

Plain data: a `Batch` (a sequence number and `MetricOps` per metric name), the
`Mark` a write asks the store to check, and the `Handover` a backend gives its
successor on the same store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._protocol import MetricSpec


@dataclass
class MetricOps:
    """What one batch does to one metric's hashes (metrics of one name share them)."""

    spec: MetricSpec
    expected: int | None = None  # the batch number this worker's last acknowledged write left
    deletes: list[str] = field(default_factory=list)  # series fields to delete, first
    incr: list[tuple[str, float]] = field(default_factory=list)  # field, delta to add
    sets: list[tuple[str, str]] = field(default_factory=list)  # HSET field value
    stamped: list[tuple[str, float]] = field(default_factory=list)  # field of `sets`, its time
    created: list[tuple[str, float]] = field(default_factory=list)  # HSETNX field timestamp
    exemplars: list[tuple[str, str]] = field(default_factory=list)  # field, see _exemplars

    def __bool__(self) -> bool:
        return bool(self.deletes or self.incr or self.sets or self.created or self.exemplars)


@dataclass
class Batch:
    """One flush: a sequence number and the operations, sent as a whole until acknowledged.

    A ``whole`` batch carries every series' state (a worker's first batch, or
    one after the store lost data), so the store may confirm it holds all.
    """

    seq: int
    ops: list[MetricOps]
    whole: bool = False

    @property
    def fields(self) -> int:
        """How many hash fields the batch writes."""
        return sum(len(o.incr) + len(o.sets) for o in self.ops)


class Mark(NamedTuple):
    """What a write asks the store to check and record of this worker's state.

    The store keeps one number per worker: the batch number of the last write
    it confirmed. A write expects ``expected`` there (or ``new``, if a lost reply
    hid that it was applied already) and then records ``new``; a ``force`` write
    (a whole batch) records ``new`` whatever is there. Anything else means the
    store lost data, or went back to an older snapshot.
    """

    expected: int | None
    new: int
    force: bool


@dataclass
class Handover:
    """What a successor on the same store needs to go on exactly once (see adopt)."""

    worker: str
    seq: int
    pending: Batch | None
    sent: dict[tuple[MetricSpec, str], tuple[Any, float, object, bool]]  # see _Entry
    deletes: dict[tuple[str, str], MetricSpec]
    stored: dict[str, int]
    marked: int | None
    whole: bool
    # per metric, the list its series queue themselves in: a record that was queuing a
    # series in it during the switch must land where the successor looks
    sinks: dict[MetricSpec, list[Any]] = field(default_factory=dict)
