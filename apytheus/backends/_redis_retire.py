"""STORE: what stopped and dead workers leave in Redis, removed without a scan.

A worker that stops cleanly retires (`retire_worker`); what a worker that died left is
pruned by the others after ``worker_retention`` (`prune_dead`). Both go through
RETIRE_SCRIPT and each worker's owned sets (see ``_redis_layout.py``), so the
cost follows what those workers left, never the number of fields in Redis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.exceptions

from ._redis_client import execute
from ._redis_layout import metric_keys, owned_key, wrote_key
from ._redis_scripts import RETIRE_SCRIPT, RETIRE_SHA
from ._redis_store import RedisStore

PRUNE_BATCH = 500  # dead workers pruned by one flush, at most


def _raise_first(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, Exception):
            raise result


def prune_dead(store: RedisStore, before: float) -> list[str]:
    """Remove what workers whose heartbeat expired before ``before`` left behind.

    Every metric each of them wrote (they listed them, see MARK_SCRIPT) loses
    its values and batch numbers (see `retire_worker`), then the workers go; at
    most `PRUNE_BATCH` per call, so that no script runs long. Returns the
    workers removed.
    """
    client = store.client
    found = client.zrangebyscore(store.workers_key, "-inf", before, 0, PRUNE_BATCH)
    gone = [w.decode() for w in found]
    if not gone:
        return gone
    pipe = client.pipeline(transaction=False)
    for worker in gone:
        pipe.hgetall(wrote_key(store.key_prefix, worker))
    listed = execute(pipe)
    _raise_first(listed)
    by_metric: dict[tuple[str, bool], list[str]] = {}
    for worker, metrics in zip(gone, listed, strict=True):
        for name, newest in metrics.items():
            by_metric.setdefault((name.decode(), newest == b"1"), []).append(worker)
    _retire(store, [(name, newest, workers) for (name, newest), workers in by_metric.items()], True)
    pipe = client.pipeline(transaction=False)
    pipe.zrem(store.workers_key, *gone)
    pipe.hdel(store.marks_key, *gone)
    pipe.delete(*(wrote_key(store.key_prefix, w) for w in gone))
    _raise_first(execute(pipe))
    return gone


def retire_worker(
    store: RedisStore, worker: str, metrics: Mapping[str, bool], prune_at: float
) -> None:
    """A worker stopped cleanly, all it sent applied: remove what only it needed.

    ``metrics`` maps every metric it wrote to whether its newest value stays
    (`newest_stays`). Its gauge values go at once, and its mark; it stops being
    live (its heartbeat is set to expire at ``prune_at`` minus the retention, so
    that pruning removes its batch numbers then: a copy of one of its batches that
    a stalled connection delivers late still finds it applied until that time).

    Raises:
        redis.exceptions.RedisError: Redis is unreachable, or the ACL refuses.
    """
    _retire(store, [(name, newest, [worker]) for name, newest in metrics.items()], False)
    pipe = store.client.pipeline(transaction=False)
    pipe.zadd(store.workers_key, {worker: prune_at}, xx=True)
    pipe.hdel(store.marks_key, worker)
    _raise_first(execute(pipe))


def _retire(store: RedisStore, jobs: Sequence[tuple[str, bool, Sequence[str]]], seqs: bool) -> None:
    """RETIRE_SCRIPT for each (metric name, newest stays, workers), in one round trip."""
    client = store.client
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        for name, newest, workers in jobs:
            seq, values, _, times = metric_keys(store.key_prefix, name)
            owned = [owned_key(store.key_prefix, name, w) for w in workers]
            keys = (seq, values, times, *owned)
            flags = ("1" if newest else "0", "1" if seqs else "0")
            pipe.execute_command("EVALSHA", RETIRE_SHA, len(keys), *keys, *flags, *workers)
        results = execute(pipe)
        if attempt == 1 and any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
            client.script_load(RETIRE_SCRIPT)
            continue
        _raise_first(results)
        return
