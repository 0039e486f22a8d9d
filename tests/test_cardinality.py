"""A metric's series are capped: an unbounded label cannot grow memory without end."""

from __future__ import annotations

import gc
import logging
import tracemalloc

import pytest

from apytheus import CollectorRegistry, Counter, Gauge, Histogram, generate_metrics


def test_label_sets_beyond_max_series_go_to_one_overflow_series(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    c = Counter("requests", "R", ["path"], registry=registry, max_series=3)
    with caplog.at_level(logging.WARNING, logger="apytheus"):
        for path in ("/a", "/b", "/c", "/d", "/e", "/a"):
            c.labels(path=path).inc()
    get = registry.get_sample_value
    assert [get("requests_total", {"path": p}) for p in ("/a", "/b", "/c")] == [2.0, 1.0, 1.0]
    assert get("requests_total", {"path": "/d"}) is None
    assert get("requests_total", {"path": "<overflow>"}) == 2.0
    assert get("apytheus_series_overflow_total", {"metric": "requests"}) == 2.0
    assert caplog.text.count("reached max_series=3") == 1


def test_an_attack_of_distinct_labels_keeps_the_metric_bounded(
    registry: CollectorRegistry,
) -> None:
    h = Histogram("latency", "L", ["user"], registry=registry, max_series=100)
    for i in range(20_000):
        h.labels(user=str(i)).observe(0.1)
    family = h._family
    assert len(family.local_series()) == 101  # 100 series and the overflow one
    assert len(family.handles) <= 101
    assert all(len(v._cache or ()) + len(v._pos_cache or ()) <= 101 for v in family.views)
    assert registry.get_sample_value("latency_count", {"user": "<overflow>"}) == 19_900.0


def test_removing_series_makes_room_again(registry: CollectorRegistry) -> None:
    g = Gauge("g", "G", ["k"], registry=registry, max_series=1)
    g.labels(k="a").set(1)
    g.labels(k="b").set(2)  # overflow
    g.remove(k="a")
    g.labels(k="c").set(3)
    assert registry.get_sample_value("g", {"k": "c"}) == 3.0


@pytest.mark.parametrize("bad", [0, -5, True])
def test_max_series_must_be_a_positive_number(registry: CollectorRegistry, bad: int) -> None:
    with pytest.raises(ValueError, match="max_series"):
        Counter("c", "C", ["k"], registry=registry, max_series=bad)
    assert generate_metrics(registry) == ""


def test_recording_does_not_grow_memory_with_operations(registry: CollectorRegistry) -> None:
    """Memory is set by series, not by operations (1,000 series, 200,000 increments)."""
    c = Counter("c", "C", ["k"], registry=registry)
    children = [c.labels(k=str(i)) for i in range(1000)]
    for child in children:
        child.inc()  # every thread cell exists before measuring
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(200):
            for child in children:
                child.inc()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 64 * 1024, f"recording grew memory by {grown} bytes"
    assert registry.get_sample_value("c_total", {"k": "7"}) == 201.0
