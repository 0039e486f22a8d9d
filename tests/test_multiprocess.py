"""Many worker processes, one Redis: totals add up exactly (real processes, real server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import wait_for
from redis_server import RedisServer

from apytheus import CollectorRegistry, Counter, Gauge, Histogram
from apytheus.backends import InProcessBackend, ScalarSeries, Series, load_backend
from apytheus.backends.redis import RedisBackend

WORKER = Path(__file__).parent / "workers" / "record.py"


def scalars(found: Sequence[Series]) -> list[ScalarSeries]:
    """The series of a counter or gauge, each checked to be a `ScalarSeries`."""
    checked = []
    for series in found:
        assert isinstance(series, ScalarSeries), series
        checked.append(series)
    return checked


def worker_env(server: RedisServer, key_prefix: str, **extra: object) -> dict[str, str]:
    config = {"url": server.url, "key_prefix": key_prefix, "flush_interval": 0.1, **extra}
    return {
        **os.environ,
        "APYTHEUS_BACKEND_CLASS": "apytheus.backends.redis.RedisBackend",
        "APYTHEUS_BACKEND_CONFIG": json.dumps(config),
    }


def run_workers(commands: list[list[str]], env: dict[str, str]) -> None:
    """Run worker processes at once, wait for them all, check each exited cleanly."""
    workers = [subprocess.Popen(c, env=env, stderr=subprocess.PIPE) for c in commands]
    try:
        for w in workers:
            _, err = w.communicate(timeout=120)
            assert w.returncode == 0, err.decode()
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate(timeout=30)


@pytest.fixture
def scraper(redis_server: RedisServer, key_prefix: str) -> Iterator[RedisBackend]:
    """This process as the worker that is scraped: same keys, none of the recording."""
    backend = load_backend(RedisBackend, {"url": redis_server.url, "key_prefix": key_prefix})
    assert isinstance(backend, RedisBackend)
    try:
        yield backend
    finally:
        backend.close()
        load_backend(InProcessBackend)


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_four_workers_totals_are_exact(
    redis_server: RedisServer, key_prefix: str, scraper: RedisBackend, loop: str
) -> None:
    env = worker_env(redis_server, key_prefix)
    args = [sys.executable, str(WORKER), "counters", loop, "10000", "1000"]
    run_workers([args] * 4, env)
    registry = CollectorRegistry()
    requests = Counter("requests", "Requests", ["route"], registry=registry)
    latency = Histogram("latency_seconds", "Latency", ["route"], registry=registry)
    found = scraper.collect([requests._family.spec, latency._family.spec])
    assert sum(s.value() for s in scalars(found[requests._family.spec])) == 40_000
    assert len(found[requests._family.spec]) == 10
    assert registry.get_sample_value("requests_total", {"route": "/r3"}) == 4_000
    assert registry.get_sample_value("latency_seconds_count", {"route": "/r"}) == 4_000
    assert registry.get_sample_value("latency_seconds_sum", {"route": "/r"}) == pytest.approx(
        4 * sum((i % 100) / 100 for i in range(1000))
    )


def start_gauge_workers(
    server: RedisServer,
    key_prefix: str,
    mode: str,
    values: list[float],
    linger: float | str,
    heartbeat_ttl: float = 1.0,
) -> list[subprocess.Popen[bytes]]:
    """Start one worker per value, in order; with no linger each has exited (and flushed)
    before the next starts, so "most recent" is the last value. ``linger="stdin"``: each
    waits for a line (`release`) and then exits cleanly."""
    env = worker_env(server, key_prefix, heartbeat_ttl=heartbeat_ttl)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for v in values:
            args = [sys.executable, str(WORKER), "gauge", mode, str(v), str(linger)]
            w = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            workers.append(w)
            assert w.stdout is not None and w.stdout.readline() == b"ready\n"
            if not linger:
                finish(w)
    except BaseException:
        for w in workers:
            finish(w, kill=True)
        raise
    return workers


def release(worker: subprocess.Popen[bytes]) -> None:
    """Let a worker started with ``linger="stdin"`` exit cleanly, and wait for it."""
    assert worker.stdin is not None
    worker.stdin.write(b"go\n")
    worker.stdin.flush()
    finish(worker)


def finish(worker: subprocess.Popen[bytes], kill: bool = False) -> None:
    """Wait for a worker (or kill it) and close its pipes; it must have exited cleanly."""
    if worker.returncode is not None and worker.stdout is not None and worker.stdout.closed:
        return  # finished already
    if kill:
        worker.kill()
    _, err = worker.communicate(timeout=30)
    if not kill:
        assert worker.returncode == 0, err.decode()


def gauge_series(scraper: RedisBackend, mode: str) -> list[tuple[dict[str, str], float]]:
    """Read the workers' gauge; registry=None keeps this process from adding its own value."""
    spec = Gauge("level", "Level", registry=None, multiprocess_mode=mode)._family.spec
    return [(s.labels.as_dict(), s.value()) for s in scalars(scraper.collect([spec])[spec])]


def gauge_value(scraper: RedisBackend, mode: str) -> float | None:
    found = gauge_series(scraper, mode)
    assert len(found) <= 1
    return found[0][1] if found else None


@pytest.mark.parametrize(("mode", "expected"), [("sum", 6.0), ("max", 3.0), ("min", 1.0)])
def test_gauge_modes_merge_every_workers_value_and_a_clean_exit_takes_its_share(
    redis_server: RedisServer, key_prefix: str, scraper: RedisBackend, mode: str, expected: float
) -> None:
    workers = start_gauge_workers(redis_server, key_prefix, mode, [1, 2, 3], linger="stdin")
    try:
        wait_for(lambda: gauge_value(scraper, mode) == expected, what="every worker's value")
        release(workers[0])  # its 1 goes with it
        assert gauge_value(scraper, mode) == {"sum": 5.0, "max": 3.0, "min": 2.0}[mode]
        for w in workers[1:]:
            release(w)
        assert gauge_value(scraper, mode) is None  # nothing left behind in Redis
    finally:
        for w in workers:
            finish(w, kill=True)


def test_mostrecent_keeps_the_newest_value_when_its_worker_exits(
    redis_server: RedisServer, key_prefix: str, scraper: RedisBackend
) -> None:
    """The workers exited one after the other: the last one's value stays (an exit never
    brings an older value back), in one field however many workers came and went."""
    start_gauge_workers(redis_server, key_prefix, "mostrecent", [1, 2, 3], linger=0)
    assert gauge_value(scraper, "mostrecent") == 3.0
    fields = scraper._store.client.hkeys(f"{{{key_prefix}|level}}:v")
    assert fields == [b"[]\t"]  # the retired slot


def test_all_mode_gives_one_series_per_live_worker(
    redis_server: RedisServer, key_prefix: str, scraper: RedisBackend
) -> None:
    workers = start_gauge_workers(redis_server, key_prefix, "all", [5, 7], linger="stdin")
    try:
        wait_for(lambda: len(gauge_series(scraper, "all")) == 2, what="both workers' values")
        found = gauge_series(scraper, "all")
        assert sorted(v for _, v in found) == [5.0, 7.0]
        assert len({labels["worker"] for labels, _ in found}) == 2
        release(workers[0])
        assert [v for _, v in gauge_series(scraper, "all")] == [7.0]
    finally:
        for w in workers:
            finish(w, kill=True)


def test_live_modes_drop_a_killed_worker_after_its_heartbeat_expires(
    redis_server: RedisServer, key_prefix: str, scraper: RedisBackend
) -> None:
    long_lived = start_gauge_workers(redis_server, key_prefix, "livesum", [10], linger=60)
    victim = start_gauge_workers(redis_server, key_prefix, "livesum", [1], linger=60)
    try:
        wait_for(lambda: gauge_value(scraper, "livesum") == 11.0, what="both workers' values")
        finish(victim[0], kill=True)  # SIGKILL: no last flush, no goodbye
        wait_for(
            lambda: gauge_value(scraper, "livesum") == 10.0, timeout=15, what="heartbeat expiry"
        )
        assert gauge_value(scraper, "sum") == 11.0  # a non-live mode still counts the dead worker
    finally:
        for w in long_lived:
            finish(w, kill=True)


def test_a_clean_exit_leaves_live_modes_at_once(
    redis_server: RedisServer, key_prefix: str, scraper: RedisBackend
) -> None:
    """Its heartbeat goes with it: no waiting for it to expire (here it would take 60 s)."""
    workers = start_gauge_workers(
        redis_server, key_prefix, "livesum", [1, 1, 1], linger="stdin", heartbeat_ttl=60
    )
    try:
        wait_for(lambda: gauge_value(scraper, "livesum") == 3.0, what="every worker's value")
        release(workers[0])
        assert gauge_value(scraper, "livesum") == 2.0
    finally:
        for w in workers:
            finish(w, kill=True)


def test_a_worker_that_never_set_the_gauge_counts_as_zero_but_never_as_most_recent(
    redis_server: RedisServer, key_prefix: str, scraper: RedisBackend
) -> None:
    registry = CollectorRegistry()
    Gauge("level", "Level", registry=registry, multiprocess_mode="mostrecent")  # untouched here
    assert scraper.flush_sync()
    workers = start_gauge_workers(redis_server, key_prefix, "mostrecent", [4], linger=0)
    finish(workers[0])
    assert scraper.flush_sync()  # this worker's untouched 0 is flushed after the worker's 4
    assert gauge_value(scraper, "mostrecent") == 4.0
    assert gauge_value(scraper, "min") == 0.0


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_four_workers_native_histograms_merge_exactly(
    redis_server: RedisServer, key_prefix: str, scraper: RedisBackend, loop: str, tmp_path: Path
) -> None:
    """Each native bucket adds up across workers, as a scrape decoded by protobuf shows."""
    from test_protobuf_encoder import decode

    from apytheus._native import bucket_key, layout, spans, split
    from apytheus.exposition import PROTOBUF_CONTENT_TYPE, render

    def observed(worker: int) -> list[float]:
        """Both signs, zeros, twelve orders of magnitude; a little different in each worker."""
        return [
            0.0 if i % 97 == 0 else (-1) ** i * 10.0 ** (i % 13 - 6) * (1 + (i % 7 + worker) / 10)
            for i in range(3000)
        ]

    env = worker_env(redis_server, key_prefix)
    commands = []
    for n in range(4):
        given = tmp_path / f"values{n}.json"
        given.write_text(json.dumps(observed(n)))
        commands.append([sys.executable, str(WORKER), "native", loop, str(given)])
    run_workers(commands, env)
    registry = CollectorRegistry()
    Histogram(
        "wait_seconds",
        "Wait",
        ["route"],
        buckets=(1.0,),
        native_bucket_factor=1.1,
        registry=registry,
    )
    body, _ = render(registry, PROTOBUF_CONTENT_TYPE.replace(" ", ""))
    (family,) = decode(body)
    (metric,) = family.metric
    hist = metric.histogram
    values = [v for w in range(4) for v in observed(w)]
    expected_counts: dict[int, float] = {}
    lay = layout(1.1, 160, 2.0**-128)
    for v in values:
        key = bucket_key(v, lay)
        assert key is not None
        expected_counts[key] = expected_counts.get(key, 0) + 1
    expected = split(expected_counts, lay)
    assert hist.sample_count == 12_000
    assert hist.sample_sum == pytest.approx(sum(values))
    assert (hist.schema, hist.zero_count) == (expected.schema, expected.zero_count)
    assert [b.cumulative_count for b in hist.bucket][:1] == [sum(1 for v in values if v <= 1.0)]
    for side, spans_got, deltas_got in (
        (expected.positive, hist.positive_span, hist.positive_delta),
        (expected.negative, hist.negative_span, hist.negative_delta),
    ):
        want_spans, want_counts = spans(side)
        assert [(s.offset, s.length) for s in spans_got] == want_spans
        counts, running = [], 0
        for d in deltas_got:
            running += d
            counts.append(running)
        assert counts == want_counts
