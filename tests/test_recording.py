"""Recording on every metric type, and what bad values get."""

from __future__ import annotations

import math
import time
from decimal import Decimal
from fractions import Fraction

import pytest

from apytheus import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_metrics,
)
from apytheus.exceptions import BucketException, LabelValidationException


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_counter_inc_adds_one_by_default_and_the_given_amount(registry: CollectorRegistry) -> None:
    c = Counter("jobs", "Jobs", registry=registry)
    c.inc()
    c.inc(2.5)
    c.inc(0)
    assert value(registry, "jobs_total") == 3.5


def test_counter_name_given_with_total_is_not_suffixed_twice(registry: CollectorRegistry) -> None:
    Counter("requests_total", "Requests", registry=registry).inc()
    assert value(registry, "requests_total") == 1.0
    assert "requests_total_total" not in generate_metrics(registry)


def test_counter_accepts_other_real_numbers(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", registry=registry)
    c.inc(Fraction(1, 2))  # type: ignore[arg-type]  # accepted, though annotated float
    c.inc(True if False else 1)
    assert value(registry, "c_total") == 1.5


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (-1, ValueError),
        (-0.5, ValueError),
        (math.nan, ValueError),
        ("1", TypeError),
        (None, TypeError),
        (True, TypeError),
        (Decimal("1"), TypeError),
        ([1], TypeError),
    ],
)
def test_counter_inc_with_bad_amount_raises_and_records_nothing(
    registry: CollectorRegistry, amount: object, error: type[Exception]
) -> None:
    c = Counter("c", "C", registry=registry)
    c.inc(3)
    before = generate_metrics(registry)
    with pytest.raises(error):
        c.inc(amount)  # type: ignore[arg-type]
    assert generate_metrics(registry) == before


def test_gauge_inc_dec_set_combine_in_call_order(registry: CollectorRegistry) -> None:
    g = Gauge("g", "G", registry=registry)
    g.inc(5)
    g.dec(2)
    assert value(registry, "g") == 3.0
    g.set(10)
    g.inc()
    g.dec(0.5)
    assert value(registry, "g") == 10.5
    g.set(-4)
    assert value(registry, "g") == -4.0


def test_gauge_set_accepts_special_floats(registry: CollectorRegistry) -> None:
    g = Gauge("g", "G", registry=registry)
    g.set(math.inf)
    assert value(registry, "g") == math.inf
    g.set(math.nan)
    assert math.isnan(value(registry, "g") or 0.0)


@pytest.mark.parametrize("bad", ["3", None, True, object()])
def test_gauge_with_non_numeric_value_raises_and_keeps_the_value(
    registry: CollectorRegistry, bad: object
) -> None:
    g = Gauge("g", "G", registry=registry)
    g.set(7)
    for op in (g.set, g.inc, g.dec):
        with pytest.raises(TypeError):
            op(bad)  # type: ignore[arg-type]
    assert value(registry, "g") == 7.0


def test_gauge_inc_with_nan_raises(registry: CollectorRegistry) -> None:
    g = Gauge("g", "G", registry=registry)
    with pytest.raises(ValueError, match="NaN"):
        g.inc(math.nan)
    assert value(registry, "g") == 0.0


def test_gauge_set_to_current_time_uses_unix_seconds(registry: CollectorRegistry) -> None:
    g = Gauge("g", "G", registry=registry)
    before = time.time()
    g.set_to_current_time()
    got = value(registry, "g")
    assert got is not None and before <= got <= time.time()


def test_gauge_set_function_is_called_at_collection(registry: CollectorRegistry) -> None:
    items: list[int] = []
    g = Gauge("items", "Items", registry=registry)
    g.set_function(lambda: len(items))
    assert value(registry, "items") == 0.0
    items.extend([1, 2, 3])
    assert value(registry, "items") == 3.0


def test_invalid_multiprocess_mode_is_refused(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="multiprocess_mode"):
        Gauge("g", "G", registry=registry, multiprocess_mode="average")


def test_histogram_counts_each_observation_in_its_bucket_cumulatively(
    registry: CollectorRegistry,
) -> None:
    h = Histogram("h", "H", registry=registry, buckets=[1, 2, 5])
    for v in (0.5, 1, 1.5, 2, 4, 100):
        h.observe(v)
    assert value(registry, "h_bucket", le="1.0") == 2.0  # le is inclusive
    assert value(registry, "h_bucket", le="2.0") == 4.0
    assert value(registry, "h_bucket", le="5.0") == 5.0
    assert value(registry, "h_bucket", le="+Inf") == 6.0
    assert value(registry, "h_count") == 6.0
    assert value(registry, "h_sum") == 109.0


def test_histogram_default_buckets_are_pytheus_ones(registry: CollectorRegistry) -> None:
    Histogram("h", "H", registry=registry).observe(0.3)
    text = generate_metrics(registry)
    les = [line.split('le="')[1].split('"')[0] for line in text.splitlines() if "le=" in line]
    assert les == [
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "5.0",
        "10.0",
        "+Inf",
    ]


@pytest.mark.parametrize(
    "buckets", [[2, 1], [1, 1], [1, math.nan], ["a"], "abc", [math.inf, 1], [True, 2]]
)
def test_histogram_with_bad_buckets_raises(registry: CollectorRegistry, buckets: object) -> None:
    with pytest.raises(BucketException):
        Histogram("h", "H", registry=registry, buckets=buckets)  # type: ignore[arg-type]
    assert generate_metrics(registry) == ""


def test_histogram_trailing_inf_bucket_is_not_doubled(registry: CollectorRegistry) -> None:
    Histogram("h", "H", registry=registry, buckets=[1, math.inf]).observe(3)
    assert generate_metrics(registry).count('le="+Inf"') == 1


@pytest.mark.parametrize("bad", [math.nan, "1", None, False])
def test_observe_with_bad_value_raises_and_records_nothing(
    registry: CollectorRegistry, bad: object
) -> None:
    h = Histogram("h", "H", registry=registry)
    s = Summary("s", "S", registry=registry)
    for metric in (h, s):
        with pytest.raises((TypeError, ValueError)):
            metric.observe(bad)  # type: ignore[arg-type]
    assert value(registry, "h_count") == 0.0
    assert value(registry, "s_count") == 0.0


def test_summary_keeps_count_and_sum(registry: CollectorRegistry) -> None:
    s = Summary("s", "S", registry=registry)
    s.observe(1.5)
    s.observe(2)
    assert value(registry, "s_count") == 2.0
    assert value(registry, "s_sum") == 3.5


def test_reserved_label_names_are_refused_per_type(registry: CollectorRegistry) -> None:
    with pytest.raises(LabelValidationException, match="reserved"):
        Histogram("h", "H", ["le"], registry=registry)
    with pytest.raises(LabelValidationException, match="reserved"):
        Summary("s", "S", ["quantile"], registry=registry)
    Counter("c", "C", ["le"], registry=registry).labels(le="x").inc()


def test_info_exposes_its_facts_as_labels(registry: CollectorRegistry) -> None:
    i = Info("build", "Build", registry=registry)
    i.info({"version": "1.2.3", "host": "a"})
    assert value(registry, "build_info", version="1.2.3", host="a") == 1.0
    i.info({"version": "2"})
    assert value(registry, "build_info", version="2") == 1.0
    assert value(registry, "build_info", version="1.2.3", host="a") is None


def test_info_with_keys_clashing_with_labels_raises(registry: CollectorRegistry) -> None:
    i = Info("build", "Build", ["env"], registry=registry)
    with pytest.raises(LabelValidationException):
        i.labels(env="x").info({"env": "y"})
    with pytest.raises(TypeError):
        i.labels(env="x").info("version=1")  # type: ignore[arg-type]


def test_enum_takes_its_states_from_any_iterable(registry: CollectorRegistry) -> None:
    states = (s for s in ("queued", "done"))  # read once
    e = Enum("job", "Job", states=states, registry=registry)
    e.state("done")
    assert registry.get_sample_value("job", {"job": "done"}) == 1.0
    assert registry.get_sample_value("job", {"job": "queued"}) == 0.0


def test_enum_starts_in_its_first_state_and_switches(registry: CollectorRegistry) -> None:
    e = Enum("task", "Task", states=["starting", "running", "stopped"], registry=registry)
    assert value(registry, "task", task="starting") == 1.0
    e.state("running")
    assert value(registry, "task", task="running") == 1.0
    assert value(registry, "task", task="starting") == 0.0
    with pytest.raises(ValueError, match="not a state"):
        e.state("flying")
    assert value(registry, "task", task="running") == 1.0


@pytest.mark.parametrize("states", [[], "ab", ["a", "a"], [1, 2]])
def test_enum_needs_distinct_string_states(registry: CollectorRegistry, states: object) -> None:
    with pytest.raises(ValueError):
        Enum("e", "E", states=states, registry=registry)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "bad\ud800", None, 3])
def test_invalid_metric_names_are_refused(registry: CollectorRegistry, name: object) -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        Counter(name, "C", registry=registry)  # type: ignore[arg-type]
    assert registry.collect() == []


def test_metric_names_may_contain_colons(registry: CollectorRegistry) -> None:
    Gauge("job:rate:5m", "Rate", registry=registry).set(1)
    assert value(registry, "job:rate:5m") == 1.0


def test_pytheus_value_keyword_works_for_inc_and_dec(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", registry=registry)
    g = Gauge("g", "G", registry=registry)
    c.inc(value=2)
    g.inc(value=5)
    g.dec(value=2)
    assert value(registry, "c_total") == 2.0
    assert value(registry, "g") == 3.0


@pytest.mark.parametrize("exemplar", [{"": "x"}, {"a": "x" * 200}, {"a": None}, "trace"])
def test_a_bad_exemplar_raises_and_records_nothing(
    registry: CollectorRegistry, exemplar: object
) -> None:
    c = Counter("c", "C", registry=registry)
    h = Histogram("h", "H", registry=registry)
    with pytest.raises((ValueError, TypeError)):
        c.inc(1, exemplar=exemplar)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError)):
        h.observe(1, exemplar=exemplar)  # type: ignore[arg-type]
    assert value(registry, "c_total") == 0.0
    assert value(registry, "h_count") == 0.0


def test_a_summary_refuses_exemplars(registry: CollectorRegistry) -> None:
    s = Summary("s", "S", registry=registry)
    with pytest.raises(ValueError, match="no exemplars on summaries"):
        s.observe(1, exemplar={"trace_id": "abc"})
    assert value(registry, "s_count") == 0.0


async def test_a_timer_keeps_the_duration_it_observed(registry: CollectorRegistry) -> None:
    h = Histogram("h", "H", registry=registry)
    g = Gauge("g", "G", registry=registry)
    with h.time() as t:
        pass
    async with g.time() as u:
        pass
    assert t.duration is not None and value(registry, "h_sum") == t.duration
    assert u.duration is not None and value(registry, "g") == u.duration


def test_counter_reset_restarts_from_zero_with_a_new_created_time(
    registry: CollectorRegistry,
) -> None:
    c = Counter("jobs", "Jobs", ["q"], registry=registry)
    child = c.labels(q="a")
    child.inc(5)
    c.labels(q="b").inc(1)
    created = value(registry, "jobs_created", q="a")
    time.sleep(0.01)  # the created time must move on (the clock's resolution)
    c.labels(q="a").reset()
    assert value(registry, "jobs_total", q="a") == 0.0
    assert value(registry, "jobs_total", q="b") == 1.0  # other series keep theirs
    new_created = value(registry, "jobs_created", q="a")
    assert created is not None and new_created is not None and new_created > created
    child.inc(2)  # a handle made before the reset records into the new value
    c.labels({"q": "a"}).inc(1)
    assert value(registry, "jobs_total", q="a") == 3.0
