"""STORE: the Redis layout, the exactly-once flush script, one-round-trip reads.

Keys carry a hash tag per metric (``{prefix:name}:v``), so everything a flush
script touches lives in one Redis Cluster slot:

* ``{p:m}:v``   values. Counter / histogram fields hold totals over all
  workers (``HINCRBYFLOAT``); gauge, info and enum fields are per worker.
* ``{p:m}:seq`` the last batch sequence number applied, per worker.
* ``{p:m}:c``   creation time per series (``HSETNX``), for OpenMetrics.
* ``{p:m}:t``   time of the last write per gauge field (``mostrecent``).
* ``{p}:workers`` a sorted set of worker heartbeats (score: Unix time).

Nothing is ever scanned (no ``KEYS``/``SCAN``): a read is one ``HGETALL`` per
metric, all pipelined.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Sequence
from typing import Any

import redis
import redis.exceptions

from .._labels import LabelSet
from ._buffer import SEP, Batch, bucket_parts
from ._protocol import MetricSpec, Series
from ._series import HistogramSeries, InfoSeries, ScalarSeries

# KEYS: seq, values, created, times. ARGV: worker, seq, now, #incr, #set, #stamped,
# #created, then the fields. Applied only if this worker's last applied batch is older,
# and the new number is stored in the same script: a retry after a lost reply is a no-op.
FLUSH_SCRIPT = """
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if last >= tonumber(ARGV[2]) then return 0 end
local i = 8
for _ = 1, tonumber(ARGV[4]) do
  redis.pcall('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1])  -- fails only on an infinite total
  i = i + 2
end
for _ = 1, tonumber(ARGV[5]) do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, tonumber(ARGV[6]) do redis.call('HSET', KEYS[4], ARGV[i], ARGV[3]); i = i + 1 end
for _ = 1, tonumber(ARGV[7]) do redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
FLUSH_SHA = hashlib.sha1(FLUSH_SCRIPT.encode()).hexdigest()

_LIVE = {"livesum", "livemax", "livemin", "livemostrecent", "liveall"}


class RedisStore:
    """Reads and writes metric data for one key prefix (blocking calls: run them in a thread)."""

    def __init__(self, client: Any, key_prefix: str, heartbeat_ttl: float) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self.heartbeat_ttl = heartbeat_ttl
        self.workers_key = f"{{{key_prefix}}}:workers"
        # field -> LabelSet per metric, so repeated scrapes parse each series once
        self._labels: weakref.WeakKeyDictionary[MetricSpec, dict[str, LabelSet | None]] = (
            weakref.WeakKeyDictionary()
        )

    def keys(self, spec: MetricSpec) -> tuple[str, str, str, str]:
        """The seq, values, created and times keys of a metric."""
        tag = f"{{{self.key_prefix}:{spec.name}}}"
        return f"{tag}:seq", f"{tag}:v", f"{tag}:c", f"{tag}:t"

    def close(self) -> None:
        """Close every connection (a cluster client's per-node pools too)."""
        client = self.client
        for node in client.get_nodes() if hasattr(client, "get_nodes") else ():
            if node.redis_connection is not None:  # RedisCluster.close() leaves these open
                node.redis_connection.connection_pool.disconnect()
        client.close()

    # -- write --------------------------------------------------------------
    def write(self, batch: Batch | None, worker: str, now: float) -> None:
        """Apply ``batch`` (if any) and refresh this worker's heartbeat, in one round trip.

        Raises:
            redis.exceptions.RedisError: the store is unreachable or refused the batch;
                re-sending the same batch later is safe.
        """
        ops_list = batch.ops if batch is not None else []
        seq = batch.seq if batch is not None else 0
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for ops in ops_list:
                args: list[Any] = [worker, seq, repr(now)]
                args += [len(ops.incr), len(ops.sets), len(ops.stamped), len(ops.created)]
                for f, d in ops.incr:
                    args += (f, repr(d))
                for f, v in ops.sets:
                    args += (f, v)
                args += ops.stamped
                for f, t in ops.created:
                    args += (f, repr(t))
                # a cluster pipeline routes EVALSHA by its keys, but refuses .evalsha()
                pipe.execute_command("EVALSHA", FLUSH_SHA, 4, *self.keys(ops.spec), *args)
            pipe.zadd(self.workers_key, {worker: now})
            results = pipe.execute(raise_on_error=False)
            errors = [r for r in results if isinstance(r, Exception)]
            if not errors:
                return
            if attempt == 1 and all(isinstance(e, redis.exceptions.NoScriptError) for e in errors):
                self.client.script_load(FLUSH_SCRIPT)  # Redis restarted: load, send again
                continue
            raise errors[0]

    def delete(self, spec: MetricSpec, labels: LabelSet | None, workers: Sequence[str]) -> None:
        """Delete one series (every worker's fields of it) or a whole metric."""
        from ._buffer import series_field

        _, values, created, times = self.keys(spec)
        if labels is None:
            self.client.delete(values, created, times)
            return
        base = series_field(labels)
        if spec.kind in ("counter", "histogram", "summary"):
            parts = bucket_parts(spec.bounds) if spec.kind != "counter" else []
            fields = [base] + [base + SEP + p for p in parts]
        else:
            fields = [base + SEP + w for w in workers]
        pipe = self.client.pipeline(transaction=False)
        pipe.hdel(values, *fields)
        pipe.hdel(created, base)
        pipe.hdel(times, *fields)
        pipe.execute()

    # -- read ---------------------------------------------------------------
    def live_workers(self, now: float) -> list[str]:
        """Workers whose heartbeat is younger than the TTL."""
        found = self.client.zrangebyscore(self.workers_key, now - self.heartbeat_ttl, "+inf")
        return [w.decode() for w in found]

    def read(self, specs: Sequence[MetricSpec], now: float) -> dict[MetricSpec, list[Series]]:
        """Every series of ``specs``, merged over workers, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for spec in specs:
            _, values, created, times = self.keys(spec)
            pipe.hgetall(values)
            pipe.hgetall(created if spec.kind in ("counter", "histogram", "summary") else times)
        pipe.zrangebyscore(self.workers_key, now - self.heartbeat_ttl, "+inf")
        results = pipe.execute()
        live = {w.decode() for w in results[-1]}
        out: dict[MetricSpec, list[Series]] = {}
        for i, spec in enumerate(specs):
            values, extra = results[2 * i], results[2 * i + 1]
            out[spec] = self._merge(spec, values, extra, live)
        return out

    def _labelset(self, spec: MetricSpec, field: str) -> LabelSet | None:
        """The labels a field names, or None if they do not fit this metric's label names.

        They do not fit when another metric of the same name but other labels
        (another registry, an older deployment) writes under the same key prefix.
        """
        cache = self._labels.setdefault(spec, {})
        if field in cache:
            return cache[field]
        try:
            values = json.loads(field)
        except ValueError:
            values = None
        ok = isinstance(values, list) and len(values) == len(spec.label_names)
        found = LabelSet(tuple(zip(spec.label_names, values, strict=True))) if ok else None
        if len(cache) < 1_000_000:
            cache[field] = found
        return found

    def _merge(
        self,
        spec: MetricSpec,
        values: dict[bytes, bytes],
        extra: dict[bytes, bytes],
        live: set[str],
    ) -> list[Series]:
        kind = spec.kind
        if kind == "counter":
            out: list[Series] = []
            for f, v in values.items():
                labels = self._labelset(spec, f.decode())
                if labels is not None:
                    out.append(_scalar(labels, float(v), _created(extra, f)))
            return out
        if kind in ("histogram", "summary"):
            return self._merge_histograms(spec, values, extra)
        return self._merge_gauges(spec, values, extra, live)

    def _merge_histograms(
        self, spec: MetricSpec, values: dict[bytes, bytes], created: dict[bytes, bytes]
    ) -> list[Series]:
        index = {p: i for i, p in enumerate(bucket_parts(spec.bounds))}
        cells: dict[str, list[float]] = {}
        width = len(index)
        for f, v in values.items():
            field, _, part = f.decode().rpartition(SEP)
            i = index.get(part)
            if i is None:
                continue  # a bucket bound this process does not declare (config changed)
            cells.setdefault(field, [0.0] * width)[i] = float(v)
        out: list[Series] = []
        for field, cell in cells.items():
            labels = self._labelset(spec, field)
            if labels is None:
                continue
            series = HistogramSeries(labels, spec.bounds)
            series.cells[0] = cell
            series.created = _created(created, field.encode())
            out.append(series)
        return out

    def _merge_gauges(
        self,
        spec: MetricSpec,
        values: dict[bytes, bytes],
        times: dict[bytes, bytes],
        live: set[str],
    ) -> list[Series]:
        mode = spec.mode if spec.kind == "gauge" else "mostrecent"
        by_series: dict[str, list[tuple[str, bytes, float]]] = {}
        for f, v in values.items():
            key = f.decode()
            field, _, worker = key.rpartition(SEP)
            if mode in _LIVE and worker not in live:
                continue
            stamp = float(times.get(f, b"0"))
            by_series.setdefault(field, []).append((worker, v, stamp))
        out: list[Series] = []
        for field, entries in by_series.items():
            labels = self._labelset(spec, field)
            if labels is None:
                continue
            if spec.kind == "info":
                newest = max(entries, key=lambda e: e[2])
                info = InfoSeries(labels)
                info.info = tuple(json.loads(newest[1]).items())
                out.append(info)
                continue
            if mode in ("all", "liveall"):
                for worker, v, _ in sorted(entries):
                    worker_labels = LabelSet(labels.pairs + (("worker", worker),))
                    out.append(_scalar(worker_labels, float(v), 0.0))
                continue
            numbers = [float(v) for _, v, _ in entries]
            if mode in ("max", "livemax"):
                value = max(numbers)
            elif mode in ("min", "livemin"):
                value = min(numbers)
            elif mode in ("mostrecent", "livemostrecent"):
                value = float(max(entries, key=lambda e: e[2])[1])
            else:
                value = sum(numbers)
            out.append(_scalar(labels, value, 0.0))
        return out


def _scalar(labels: LabelSet, value: float, created: float) -> ScalarSeries:
    series = ScalarSeries(labels)
    series.cells[0] = value
    series.created = created
    return series


def _created(created: dict[bytes, bytes], field: bytes) -> float:
    raw = created.get(field)
    return float(raw) if raw is not None else 0.0


def make_client(config: dict[str, Any]) -> Any:
    """A redis-py sync client (or cluster client) from the backend config."""
    cluster = bool(config.pop("cluster", False))
    url = config.pop("url", None)
    options: dict[str, Any] = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0, **config}
    if cluster:
        from redis.cluster import RedisCluster

        if url:
            return RedisCluster.from_url(url, **options)
        return RedisCluster(**options)
    if url:
        return redis.Redis.from_url(url, **options)
    return redis.Redis(**options)
