"""STORE: the Redis layout, the exactly-once flush script, one-round-trip reads.

Keys carry a hash tag per metric (``{prefix|name}:v``), so everything a flush
script touches lives in one Redis Cluster slot (``|`` is in no metric name, so
prefixes and names cannot run into each other):

* ``{p|m}:v``   values. Counter / histogram fields hold totals over all
  workers (added in the flush script); gauge, info and enum fields are per worker.
* ``{p|m}:seq`` the last batch sequence number applied, per worker.
* ``{p|m}:c``   creation time per series (``HSETNX``), for OpenMetrics.
* ``{p|m}:t``   time of the last write per gauge field (``mostrecent``).
* ``{p}:workers`` a sorted set of workers; the score is when each one's
  heartbeat expires, as the worker itself set it.
* ``{p}:marks``  per worker, the batch number of its last confirmed write:
  how a worker notices that Redis lost (or rolled back) what it sent.

Nothing is ever scanned (no ``KEYS``/``SCAN``): a read is one ``HGETALL`` per
metric, all pipelined.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from .._labels import LabelSet
from ._buffer import SEP, Batch, Mark, bucket_parts
from ._protocol import MetricSpec, Series
from ._series import HistogramSeries, InfoSeries, ScalarSeries

# KEYS: seq, values, created, times. ARGV: worker, seq, expected, #deletes, #incr, #set,
# #stamped, #created, then the fields: series to delete, (field, delta), (field, value),
# (field, time), (field, time). Applied only if this worker's last applied batch is older;
# the number is stored first, so a script that fails half-way (a key of another type) is
# never applied twice. Deletes go first: each removes every field of a series (buckets,
# every worker's value). Totals are added in Lua, in doubles as in the workers, and stored
# with 17 significant digits, which read back as the same double (HINCRBYFLOAT prints 17
# *decimals*: 1.2345678901234567e-10 comes back as 1.2345679e-10, and 1e-20 as 0); a
# field that holds no number refuses them all. Returns 0 (applied before), 1 (applied) or
# 2 (applied, but the worker's last batch number here is older than ``expected``, or
# missing: this metric's keys were lost or rolled back).
FLUSH_SCRIPT = """
local known = redis.call('HGET', KEYS[1], ARGV[1])
local last = tonumber(known or '0')
if last >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local i = 9
local deletes = tonumber(ARGV[4])
if deletes > 0 then
  local gone = {}
  for k = i, i + deletes - 1 do gone[ARGV[k]] = true end
  for key = 2, 4 do
    for _, f in ipairs(redis.call('HKEYS', KEYS[key])) do
      if gone[string.match(f, '^[^\t]*')] then redis.call('HDEL', KEYS[key], f) end
    end
  end
  i = i + deletes
end
local fields, totals = {}, {}
for _ = 1, tonumber(ARGV[5]) do
  local f = ARGV[i]
  local total = totals[f]
  if total == nil then
    total = tonumber(redis.call('HGET', KEYS[2], f) or '0')
    if not total then
      return redis.error_reply('field ' .. f .. ' of ' .. KEYS[2] .. ' holds no number')
    end
    fields[#fields + 1] = f
  end
  totals[f] = total + tonumber(ARGV[i + 1])
  i = i + 2
end
for _, f in ipairs(fields) do redis.call('HSET', KEYS[2], f, string.format('%.17g', totals[f])) end
for _ = 1, tonumber(ARGV[6]) do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, tonumber(ARGV[7]) do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, tonumber(ARGV[8]) do redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2 end
local expected = tonumber(ARGV[3])
if expected and last < expected then return 2 end
return 1
"""
FLUSH_SHA = hashlib.sha1(FLUSH_SCRIPT.encode()).hexdigest()

# KEYS: workers, marks. ARGV: worker, heartbeat expiry, expected mark ('' for none), new
# mark, force ('1' or '0'). Refreshes the heartbeat, then moves the worker's mark (the
# batch number of its last confirmed write) from the expected one to the new one.
# Returns 0 if the mark is neither (Redis lost it, or went back to an older snapshot):
# then it is left as it is, so a retry after a lost reply still finds it wrong.
MARK_SCRIPT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local mark = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[5] == '1' or mark == ARGV[3] or mark == ARGV[4] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
  return 1
end
return 0
"""
MARK_SHA = hashlib.sha1(MARK_SCRIPT.encode()).hexdigest()

# KEYS: seq, values, times. ARGV: workers gone for longer than the retention. Removes
# their batch numbers and their gauge fields (series field, tab, worker).
PRUNE_SCRIPT = """
local gone = {}
for _, w in ipairs(ARGV) do gone[w] = true; redis.call('HDEL', KEYS[1], w) end
for k = 2, 3 do
  for _, f in ipairs(redis.call('HKEYS', KEYS[k])) do
    local w = string.match(f, '\t([^\t]*)$')
    if w and gone[w] then redis.call('HDEL', KEYS[k], f) end
  end
end
return 1
"""
PRUNE_SHA = hashlib.sha1(PRUNE_SCRIPT.encode()).hexdigest()
_SCRIPTS = (FLUSH_SCRIPT, PRUNE_SCRIPT, MARK_SCRIPT)

log = logging.getLogger("apytheus")

_LIVE = {"livesum", "livemax", "livemin", "livemostrecent", "liveall"}
_TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
)
# errors that retrying cannot cure: the credentials or the ACL are wrong (a config problem)
_AUTH_PREFIXES = ("NOAUTH", "WRONGPASS", "NOPERM")
_SCRIPT_ACL = "user executing the script can't"  # an ACL refusal inside a Lua script


class Written(NamedTuple):
    """What a write found out besides applying the batch."""

    refused: list[str]
    """Metrics whose update Redis refused (a key of another type, say): dropped."""
    behind: set[str]
    """Metrics whose keys held an older batch number of this worker than expected, or none."""
    confirmed: bool
    """Redis held the mark this worker expected (see MARK_SCRIPT)."""


class RedisStore:
    """Reads and writes metric data for one key prefix (blocking calls: run them in a thread).

    The client is created on first use, so creating a store does no I/O (a
    cluster client connects when it is made).
    """

    def __init__(self, make_client: Callable[[], Any], key_prefix: str, heartbeat_ttl: float):
        self._make_client = make_client
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.key_prefix = key_prefix
        self.heartbeat_ttl = heartbeat_ttl
        self.workers_key = f"{{{key_prefix}}}:workers"
        self.marks_key = f"{{{key_prefix}}}:marks"
        # field -> LabelSet per metric, rebuilt by every read (so it never outgrows Redis)
        self._labels: weakref.WeakKeyDictionary[MetricSpec, dict[str, LabelSet | None]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def client(self) -> Any:
        """The redis-py client (made on first use)."""
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client()
                client = self._client
        return client

    def reset(self) -> None:
        """Forget the client without closing it (after fork: it is the parent's)."""
        self._client = None
        self._client_lock = threading.Lock()

    def close(self) -> None:
        """Close every connection (a cluster client's per-node pools too)."""
        client, self._client = self._client, None
        if client is not None:
            _close_client(client)

    def keys(self, spec: MetricSpec) -> tuple[str, str, str, str]:
        """The seq, values, created and times keys of a metric."""
        tag = f"{{{self.key_prefix}|{spec.name}}}"
        return f"{tag}:seq", f"{tag}:v", f"{tag}:c", f"{tag}:t"

    # -- write --------------------------------------------------------------
    def write(self, batch: Batch | None, worker: str, now: float, mark: Mark) -> Written:
        """Apply ``batch``, refresh the heartbeat and check ``mark``, in one round trip.

        Returns:
            The metrics whose update Redis refused (dropped, not retried: the rest
            of the batch is applied), and what tells the buffer that Redis lost
            this worker's data (see `DeltaBuffer.ack`).

        Raises:
            redis.exceptions.RedisError: Redis is unreachable or busy; re-sending the
                same batch later is safe.
        """
        ops_list = batch.ops if batch is not None else []
        seq = batch.seq if batch is not None else 0
        client = self.client
        for attempt in (1, 2):
            pipe = client.pipeline(transaction=False)
            for ops in ops_list:
                expected = "" if ops.expected is None else str(ops.expected)
                args: list[Any] = [worker, seq, expected, len(ops.deletes), len(ops.incr)]
                args += [len(ops.sets), len(ops.stamped), len(ops.created), *ops.deletes]
                for f, d in ops.incr:
                    args += (f, repr(d))
                for f, v in ops.sets:
                    args += (f, v)
                for f, t in (*ops.stamped, *ops.created):
                    args += (f, repr(t))
                # a cluster pipeline routes EVALSHA by its keys, but refuses .evalsha()
                pipe.execute_command("EVALSHA", FLUSH_SHA, 4, *self.keys(ops.spec), *args)
            expected_mark = "" if mark.expected is None else str(mark.expected)
            expiry = repr(now + self.heartbeat_ttl)
            force = "1" if mark.force else "0"
            keys = (self.workers_key, self.marks_key)
            mark_args = (worker, expiry, expected_mark, str(mark.new), force)
            pipe.execute_command("EVALSHA", MARK_SHA, 2, *keys, *mark_args)
            results = pipe.execute(raise_on_error=False)
            op_results = results[: len(ops_list)]
            behind = {o.spec.name for o, r in zip(ops_list, op_results, strict=True) if r == 2}
            errors = [r for r in results if isinstance(r, Exception)]
            if not errors:
                return Written([], behind, results[-1] == 1)
            # an outage, or an ACL that refuses a command: keep the batch, send it again later
            transient = [e for e in errors if isinstance(e, _TRANSIENT) or is_auth_error(e)]
            if transient:
                raise transient[0]
            if attempt == 1 and any(isinstance(e, redis.exceptions.NoScriptError) for e in errors):
                # Redis restarted (or its scripts were flushed): load them and send the same
                # again (every script checks what it already applied)
                for script in _SCRIPTS:
                    client.script_load(script)
                continue
            if isinstance(results[-1], Exception):
                raise results[-1]  # the heartbeat and mark failed: an unexpected error
            refused = [
                o.spec.name
                for o, r in zip(ops_list, op_results, strict=True)
                if isinstance(r, Exception)
            ]
            return Written(refused, behind, results[-1] == 1)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def prune(self, specs: Sequence[MetricSpec], before: float, retry: bool = True) -> list[str]:
        """Remove what workers whose heartbeat expired before ``before`` left behind.

        Their batch numbers and gauge values go from every metric in ``specs``,
        then the workers themselves. Returns the workers removed.
        """
        client = self.client
        gone = [w.decode() for w in client.zrangebyscore(self.workers_key, "-inf", before)]
        if not gone:
            return []
        pipe = client.pipeline(transaction=False)
        for spec in {s.name: s for s in specs}.values():
            seq, values, _, times = self.keys(spec)
            pipe.execute_command("EVALSHA", PRUNE_SHA, 3, seq, values, times, *gone)
        pipe.zrem(self.workers_key, *gone)
        pipe.hdel(self.marks_key, *gone)
        results = pipe.execute(raise_on_error=False)
        if retry and any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
            client.script_load(PRUNE_SCRIPT)
            return self.prune(specs, before, retry=False)
        refused = [r for r in results if isinstance(r, Exception) and is_auth_error(r)]
        if refused:
            raise refused[0]  # the ACL does not allow pruning: say so
        return gone

    # -- read ---------------------------------------------------------------
    def read(self, specs: Sequence[MetricSpec], now: float) -> dict[MetricSpec, list[Series]]:
        """Every series of ``specs``, merged over workers, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for spec in specs:
            _, values, created, times = self.keys(spec)
            pipe.hgetall(values)
            pipe.hgetall(created if spec.kind in ("counter", "histogram", "summary") else times)
        pipe.zrangebyscore(self.workers_key, now, "+inf")
        results = pipe.execute(raise_on_error=False)
        # an outage, or an ACL that refuses a read: no partial answer
        errors = [r for r in results if isinstance(r, Exception)]
        transient = [e for e in errors if isinstance(e, _TRANSIENT) or is_auth_error(e)]
        if transient:
            raise transient[0]
        if isinstance(results[-1], Exception):
            raise results[-1]
        live = {w.decode() for w in results[-1]}
        out: dict[MetricSpec, list[Series]] = {}
        for i, spec in enumerate(specs):
            values, extra = results[2 * i], results[2 * i + 1]
            if isinstance(values, Exception) or isinstance(extra, Exception):
                # one metric's keys are unreadable (another type): leave it out, serve the rest
                log.error("apytheus: cannot read %s from Redis: %s", spec.name, values or extra)
                out[spec] = []
                continue
            known = self._labels.get(spec, {})
            fresh: dict[str, LabelSet | None] = {}
            out[spec] = _Merge(spec, known, fresh).merge(values, extra, live)
            self._labels[spec] = fresh
        return out


class _Merge:
    """Turns one metric's hashes into series (fields -> labels via a per-read cache)."""

    def __init__(
        self,
        spec: MetricSpec,
        known: dict[str, LabelSet | None],
        fresh: dict[str, LabelSet | None],
    ) -> None:
        self.spec = spec
        self.known = known
        self.fresh = fresh

    def labels(self, field: str) -> LabelSet | None:
        """The labels a field names, or None if they do not fit this metric's label names.

        They do not fit when another metric of the same name but other labels
        (another registry, an older deployment) writes under the same key prefix.
        """
        if field in self.fresh:
            return self.fresh[field]
        found = self.known[field] if field in self.known else self._parse(field)
        self.fresh[field] = found
        return found

    def _parse(self, field: str) -> LabelSet | None:
        try:
            values = json.loads(field)
        except ValueError:
            return None
        names = self.spec.label_names
        if not isinstance(values, list) or len(values) != len(names):
            return None
        return LabelSet(tuple(zip(names, map(str, values), strict=True)))

    def merge(
        self, values: dict[bytes, bytes], extra: dict[bytes, bytes], live: set[str]
    ) -> list[Series]:
        kind = self.spec.kind
        if kind == "counter":
            out: list[Series] = []
            for f, v in values.items():
                labels = self.labels(f.decode())
                if labels is not None:
                    out.append(_scalar(labels, float(v), _created(extra, f)))
            return out
        if kind in ("histogram", "summary"):
            return self._histograms(values, extra)
        return self._gauges(values, extra, live)

    def _histograms(self, values: dict[bytes, bytes], created: dict[bytes, bytes]) -> list[Series]:
        spec = self.spec
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
            labels = self.labels(field)
            if labels is None:
                continue
            series = HistogramSeries(labels, spec.bounds)
            series.cells[0] = cell
            series.created = _created(created, field.encode())
            out.append(series)
        return out

    def _gauges(
        self, values: dict[bytes, bytes], times: dict[bytes, bytes], live: set[str]
    ) -> list[Series]:
        spec = self.spec
        mode = spec.mode if spec.kind == "gauge" else "mostrecent"
        by_series: dict[str, list[tuple[str, bytes, float]]] = {}
        for f, v in values.items():
            field, _, worker = f.decode().rpartition(SEP)
            if mode in _LIVE and worker not in live:
                continue
            by_series.setdefault(field, []).append((worker, v, float(times.get(f, b"0"))))
        out: list[Series] = []
        for field, entries in by_series.items():
            labels = self.labels(field)
            if labels is None:
                continue
            if spec.kind == "info":
                info = InfoSeries(labels)
                info.info = tuple(json.loads(max(entries, key=lambda e: e[2])[1]).items())
                out.append(info)
            elif mode in ("all", "liveall"):
                for worker, v, _ in sorted(entries):
                    out.append(_scalar(LabelSet((*labels.pairs, ("worker", worker))), float(v), 0))
            else:
                out.append(_scalar(labels, _combine(mode, entries), 0.0))
        return out


def _combine(mode: str, entries: list[tuple[str, bytes, float]]) -> float:
    if mode in ("mostrecent", "livemostrecent"):
        return float(max(entries, key=lambda e: e[2])[1])
    numbers = [float(v) for _, v, _ in entries]
    if mode in ("max", "livemax"):
        return max(numbers)
    if mode in ("min", "livemin"):
        return min(numbers)
    return sum(numbers)


def _scalar(labels: LabelSet, value: float, created: float) -> ScalarSeries:
    series = ScalarSeries(labels)
    series.cells[0] = value
    series.created = created
    return series


def _created(created: dict[bytes, bytes], field: bytes) -> float:
    raw = created.get(field)
    return float(raw) if raw is not None else 0.0


def _close_client(client: Any) -> None:
    for node in client.get_nodes() if hasattr(client, "get_nodes") else ():
        if node.redis_connection is not None:  # RedisCluster.close() leaves these open
            node.redis_connection.connection_pool.disconnect()
    client.close()


def ping_once(make_client: Callable[[], Any]) -> None:
    """Connect with a client of its own, send one PING, disconnect (blocking).

    Raises:
        redis.exceptions.RedisError: what connecting or the PING raised.
    """
    client = make_client()
    try:
        client.ping()
    finally:
        _close_client(client)


def is_auth_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the credentials or the ACL are wrong."""
    return _auth_error(exc) is not None


def _auth_error(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # a cluster client wraps the cause
        seen.add(id(current))
        if isinstance(
            current,
            redis.exceptions.AuthenticationError
            | redis.exceptions.AuthenticationWrongNumberOfArgsError
            | redis.exceptions.NoPermissionError,
        ):
            return current
        if isinstance(current, redis.exceptions.ResponseError) and (
            str(current).startswith(_AUTH_PREFIXES) or _SCRIPT_ACL in str(current)
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def auth_problem(exc: BaseException, config: Mapping[str, Any]) -> str | None:
    """What is wrong and how to fix it, if ``exc`` is an authentication or ACL error.

    The message names the server (its address without the password) and never
    contains the password.
    """
    error = _auth_error(exc)
    if error is None:
        return None
    where = redacted_location(config)
    password = _password(config)
    reply = str(error)
    if password:
        reply = reply.replace(password, "***")
    text = reply.lower()
    if isinstance(error, redis.exceptions.AuthenticationWrongNumberOfArgsError):
        what = (
            f"Redis at {where} refused AUTH with a username (a server older than 6.0 "
            "has no ACL users)"
        )
        fix = "leave `username` out of the backend config, or upgrade Redis"
    elif (
        isinstance(error, redis.exceptions.NoPermissionError)
        or text.startswith("noperm")
        or _SCRIPT_ACL in text
    ):
        what = f"the Redis ACL user of {where} may not run a command apytheus needs"
        fix = (
            "grant that user the commands and key patterns listed in the Security "
            "section of the multiprocess docs (ACL SETUSER)"
        )
    elif "without any password configured" in text or "no password is set" in text:
        what = f"the backend config gives a password, but Redis at {where} has none set"
        fix = "remove the password from the backend config, or set one in Redis (requirepass)"
    elif not password or "authentication required" in text or "noauth" in text:
        what = f"Redis at {where} requires a password, and the backend config gives none"
        fix = (
            'give it: "url": "redis://:PASSWORD@host:6379/0", or the "password" '
            '(and "username" for an ACL user) option'
        )
    else:
        what = f"Redis at {where} refused the username/password of the backend config"
        fix = (
            'check "password" (and "username" for an ACL user), in the "url" '
            "(redis://USER:PASSWORD@host) or as options"
        )
    return f"{what} ({type(error).__name__}: {reply}); {fix}"


def _password(config: Mapping[str, Any]) -> str | None:
    url = config.get("url")
    if url:
        try:
            found = urlsplit(str(url)).password
        except ValueError:
            found = None
        if found:
            return unquote(found)
    password = config.get("password")
    return str(password) if password else None


def redacted_location(config: Mapping[str, Any]) -> str:
    """Where the config points, as a URL without password or query (safe to log)."""
    url = config.get("url")
    if url:
        try:
            parts = urlsplit(str(url))
            user = f"{parts.username}@" if parts.username else ""
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return "<the configured url>"
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"
    scheme = "rediss" if config.get("ssl") else "redis"
    if config.get("unix_socket_path"):
        return f"unix://{config['unix_socket_path']}"
    user = f"{config['username']}@" if config.get("username") else ""
    host = config.get("host", "localhost")
    return f"{scheme}://{user}{host}:{config.get('port', 6379)}/{config.get('db', 0)}"


def client_factory(config: dict[str, Any], retries: int | None = None) -> Callable[[], Any]:
    """A function making a redis-py sync client (or cluster client) from the config.

    ``retries`` (if given) replaces redis-py's retry policy: ``0`` makes a client
    that tries once (the startup check's).
    """
    options = dict(config)
    cluster = bool(options.pop("cluster", False))
    url = options.pop("url", None)
    options = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0, **options}
    if retries is not None:
        options["retry"] = Retry(NoBackoff(), retries)
    if cluster:
        from redis.cluster import RedisCluster

        if url:
            return lambda: RedisCluster.from_url(url, **options)
        return lambda: RedisCluster(**options)
    if url:
        redis.Redis.from_url(url, **options)  # checks the options now (no I/O), not at first use
        return lambda: redis.Redis.from_url(url, **options)
    redis.Redis(**options)
    return lambda: redis.Redis(**options)
