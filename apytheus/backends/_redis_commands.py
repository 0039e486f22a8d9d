"""STORE: the commands a flush sends: each script's keys and arguments, built from a batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._batch import Mark, MetricOps
from ._protocol import MetricSpec
from ._redis_layout import (
    exemplars_key,
    marks_key,
    metric_keys,
    owned_key,
    workers_key,
    wrote_key,
)
from ._redis_scripts import EXEMPLAR_SHA, FLUSH_SHA, MARK_SHA

_KIND_CODES = {"counter": "1", "histogram": "0", "summary": "0"}  # the rest: gauge-like


def newest_stays(spec: MetricSpec) -> bool:
    """Whether a stopping worker's newest value of ``spec`` stays (the last write wins)."""
    return spec.kind in ("info", "stateset") or (spec.kind == "gauge" and spec.mode == "mostrecent")


def flush_command(prefix: str, ops: MetricOps, worker: str, seq: int, now: float) -> list[Any]:
    """FLUSH_SCRIPT for one metric of a batch (see its comment for the arguments)."""
    name = ops.spec.name
    expected = "" if ops.expected is None else str(ops.expected)
    kind = _KIND_CODES.get(ops.spec.kind, "2")
    keys = (
        *metric_keys(prefix, name),
        owned_key(prefix, name, worker),
        exemplars_key(prefix, name),
    )
    args: list[Any] = ["EVALSHA", FLUSH_SHA, len(keys), *keys]
    args += [worker, seq, expected, len(ops.deletes), len(ops.incr)]
    args += [len(ops.sets), len(ops.stamped), len(ops.created), kind, repr(now)]
    args += ops.deletes
    for f, d in ops.incr:
        args += (f, repr(d))
    for f, v in ops.sets:
        args += (f, v)
    for f, t in (*ops.stamped, *ops.created):
        args += (f, repr(t))
    return args


def exemplar_command(prefix: str, ops: MetricOps) -> list[Any]:
    """EXEMPLAR_SCRIPT for one metric's changed exemplars."""
    pairs = [x for pair in ops.exemplars for x in pair]
    values = metric_keys(prefix, ops.spec.name)[1]
    return ["EVALSHA", EXEMPLAR_SHA, 2, exemplars_key(prefix, ops.spec.name), values, *pairs]


def mark_command(
    prefix: str, ops_list: Sequence[MetricOps], worker: str, expiry: float, mark: Mark
) -> list[Any]:
    """MARK_SCRIPT: the heartbeat until ``expiry``, the metrics written, the mark's check."""
    keys = (workers_key(prefix), marks_key(prefix), wrote_key(prefix, worker))
    expected = "" if mark.expected is None else str(mark.expected)
    args: list[Any] = ["EVALSHA", MARK_SHA, len(keys), *keys]
    args += [worker, repr(expiry), expected, str(mark.new), "1" if mark.force else "0"]
    for ops in ops_list:  # the metrics it wrote, for pruning
        args += (ops.spec.name, "1" if newest_stays(ops.spec) else "0")
    return args
