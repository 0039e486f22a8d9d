"""Exposition of every metric type, checked with prometheus_client's parsers as the oracle.

Each test records known values, renders them with apytheus and parses the
result with ``prometheus_client.parser`` (text format 0.0.4) or
``prometheus_client.openmetrics.parser`` (OpenMetrics 1.0.0), then asserts the
parsed names, types, labels and values. prometheus_client is a test oracle
only: apytheus never imports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import suppress

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus_text
from prometheus_client.utils import floatToGoString

from apytheus import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    agenerate_metrics,
    generate_metrics,
)
from apytheus.metrics import DEFAULT_BUCKETS

# A label value with everything that must be escaped (quote, backslash, newline)
# and non-ASCII text that must pass through unchanged.
TRICKY = 'say "hi" \\ back\nnext line, ünïcødé ✓ 日本 🎉'
# The same value as it must appear between the quotes of a label in both formats.
TRICKY_ESCAPED = r"say \"hi\" \\ back\nnext line, ünïcødé ✓ 日本 🎉"

# Characters that are no line end in either format, though str.splitlines() says otherwise.
CONTROL = "nul\x00 cr\r vt\x0b ff\x0c fs\x1c nel\x85 ls\u2028 ps\u2029 bom\ufeff max\U0010ffff"

Row = tuple[str, dict[str, str], float]

# prometheus_client's OpenMetrics parser has no annotations: what it is, typed
parse_openmetrics_text: Callable[[str], Iterable[Metric]] = om_parser.text_string_to_metric_families


# -- helpers ---------------------------------------------------------------------------------
def _by_name(families: Iterable[Metric], text: str) -> dict[str, Metric]:
    found = list(families)
    names = [f.name for f in found]
    assert len(names) == len(set(names)), f"a family was split in two: {names}\n{text}"
    return {f.name: f for f in found}


def text_families(registry: CollectorRegistry) -> dict[str, Metric]:
    """Render ``registry`` as text 0.0.4 and parse it with prometheus_client."""
    text = generate_metrics(registry)
    return _by_name(parse_prometheus_text(text), text)


def openmetrics_families(registry: CollectorRegistry) -> dict[str, Metric]:
    """Render ``registry`` as OpenMetrics and parse it with prometheus_client's OM parser."""
    text = generate_metrics(registry, openmetrics=True)
    return _by_name(parse_openmetrics_text(text), text)


def rows(family: Metric) -> list[Row]:
    """The samples of ``family`` as (name, labels, value), ``_created`` samples left out."""
    return [(s.name, s.labels, s.value) for s in family.samples if not s.name.endswith("_created")]


def created(family: Metric) -> list[tuple[dict[str, str], float]]:
    """The ``_created`` samples of ``family`` as (labels, value)."""
    return [(s.labels, s.value) for s in family.samples if s.name.endswith("_created")]


def assert_created_between(
    family: Metric, labelsets: list[dict[str, str]], before: float, after: float
) -> None:
    """One ``_created`` sample per labelset, each a Unix time taken while the test ran."""
    found = created(family)
    assert sorted(map(sorted_items, (labels for labels, _ in found))) == sorted(
        map(sorted_items, labelsets)
    )
    for labels, value in found:  # 1 ms of slack for a clock read another way than time()
        assert before - 0.001 <= value <= after + 0.001, (labels, value, before, after)


def sorted_items(labels: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(labels.items())


def assert_no_created(family: Metric) -> None:
    assert created(family) == [], family.samples


# -- counter -------------------------------------------------------------------------------
def test_counter_without_labels_round_trips_through_the_text_parser(
    registry: CollectorRegistry,
) -> None:
    c = Counter("requests", "Requests served", registry=registry)
    c.inc()
    c.inc(2.5)

    text = generate_metrics(registry)
    assert "# TYPE requests_total counter\n" in text
    families = text_families(registry)

    assert list(families) == ["requests"]  # the parser strips _total from a counter family
    fam = families["requests"]
    assert (fam.type, fam.documentation) == ("counter", "Requests served")
    assert rows(fam) == [("requests_total", {}, 3.5)]
    assert_no_created(fam)


def test_counter_without_labels_round_trips_through_the_openmetrics_parser(
    registry: CollectorRegistry,
) -> None:
    before = time.time()
    c = Counter("requests", "Requests served", registry=registry)
    after = time.time()
    c.inc()
    c.inc(2.5)

    fam = openmetrics_families(registry)["requests"]

    assert (fam.type, fam.documentation) == ("counter", "Requests served")
    assert rows(fam) == [("requests_total", {}, 3.5)]
    assert_created_between(fam, [{}], before, after)


def test_counter_name_given_with_total_is_not_suffixed_twice_in_either_format(
    registry: CollectorRegistry,
) -> None:
    Counter("errors_total", "Errors", registry=registry).inc(7)

    assert "errors_total_total" not in generate_metrics(registry)
    assert "errors_total_total" not in generate_metrics(registry, openmetrics=True)
    assert rows(text_families(registry)["errors"]) == [("errors_total", {}, 7.0)]
    assert rows(openmetrics_families(registry)["errors"]) == [("errors_total", {}, 7.0)]


def _labeled_counter(registry: CollectorRegistry) -> tuple[list[Row], float, float]:
    before = time.time()
    c = Counter(
        "http_requests",
        "HTTP requests",
        required_labels=["path", "method"],
        default_labels={"method": "GET"},
        registry=registry,
    )
    c.labels(path=TRICKY).inc(2)  # keyword labels; method from the default
    c.labels({"path": "/", "method": "POST"}).inc()  # a dict
    c.labels("/x", "PUT").inc(0.25)  # positional values in declared order
    c.labels(path="/", method="POST").inc()  # same series as the dict form
    after = time.time()
    expected = [
        ("http_requests_total", {"path": TRICKY, "method": "GET"}, 2.0),
        ("http_requests_total", {"path": "/", "method": "POST"}, 2.0),
        ("http_requests_total", {"path": "/x", "method": "PUT"}, 0.25),
    ]
    return expected, before, after


def test_counter_with_labels_round_trips_through_the_text_parser(
    registry: CollectorRegistry,
) -> None:
    expected, _, _ = _labeled_counter(registry)

    text = generate_metrics(registry)
    assert f'http_requests_total{{path="{TRICKY_ESCAPED}",method="GET"}} 2.0\n' in text
    fam = text_families(registry)["http_requests"]

    assert fam.type == "counter"
    assert rows(fam) == expected
    assert_no_created(fam)


def test_counter_with_labels_round_trips_through_the_openmetrics_parser(
    registry: CollectorRegistry,
) -> None:
    expected, before, after = _labeled_counter(registry)

    fam = openmetrics_families(registry)["http_requests"]

    assert fam.type == "counter"
    assert rows(fam) == expected
    assert_created_between(fam, [labels for _, labels, _ in expected], before, after)


def test_counter_whose_labels_all_have_defaults_is_exposed_with_them(
    registry: CollectorRegistry,
) -> None:
    c = Counter("jobs", "Jobs", ["region"], default_labels={"region": TRICKY}, registry=registry)
    c.inc(4)

    assert rows(text_families(registry)["jobs"]) == [("jobs_total", {"region": TRICKY}, 4.0)]
    assert rows(openmetrics_families(registry)["jobs"]) == [("jobs_total", {"region": TRICKY}, 4.0)]


# -- gauge ---------------------------------------------------------------------------------
def test_gauge_without_labels_round_trips_through_both_parsers(
    registry: CollectorRegistry,
) -> None:
    g = Gauge("queue_size", "Jobs waiting", registry=registry)
    g.set(42)
    g.inc(3)
    g.dec(0.5)

    for families in (text_families(registry), openmetrics_families(registry)):
        fam = families["queue_size"]
        assert (fam.type, fam.documentation) == ("gauge", "Jobs waiting")
        assert rows(fam) == [("queue_size", {}, 44.5)]
        assert_no_created(fam)


def test_gauge_with_labels_and_defaults_round_trips_through_both_parsers(
    registry: CollectorRegistry,
) -> None:
    g = Gauge(
        "temperature_celsius",
        "Temperature",
        ["room", "sensor"],
        default_labels={"sensor": TRICKY},
        registry=registry,
    )
    g.labels(room="kitchen").set(21.5)
    g.labels(room="hall", sensor="s2").set(-3)
    g.labels("cellar", "s3").set(0.1 + 0.2)  # needs all 17 digits to round-trip
    g.labels(room="attic").set(1e300)
    g.labels(room="void").set(5e-324)

    expected = [
        ("temperature_celsius", {"room": "kitchen", "sensor": TRICKY}, 21.5),
        ("temperature_celsius", {"room": "hall", "sensor": "s2"}, -3.0),
        ("temperature_celsius", {"room": "cellar", "sensor": "s3"}, 0.1 + 0.2),
        ("temperature_celsius", {"room": "attic", "sensor": TRICKY}, 1e300),
        ("temperature_celsius", {"room": "void", "sensor": TRICKY}, 5e-324),
    ]
    assert rows(text_families(registry)["temperature_celsius"]) == expected
    assert rows(openmetrics_families(registry)["temperature_celsius"]) == expected


def test_label_values_with_control_characters_and_unicode_line_separators_round_trip(
    registry: CollectorRegistry,
) -> None:
    g = Gauge("odd", "Odd labels", ["a", "b"], registry=registry)
    g.labels(a=CONTROL, b="").set(1)
    g.labels(a="", b=CONTROL + TRICKY).set(2)

    expected = [
        ("odd", {"a": CONTROL, "b": ""}, 1.0),
        ("odd", {"a": "", "b": CONTROL + TRICKY}, 2.0),
    ]
    assert rows(text_families(registry)["odd"]) == expected
    assert rows(openmetrics_families(registry)["odd"]) == expected


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_gauge_renders_infinities_and_nan_as_prometheus_spells_them(
    registry: CollectorRegistry, openmetrics: bool
) -> None:
    g = Gauge("edge", "Edge values", ["case"], registry=registry)
    g.labels(case="pos").set(math.inf)
    g.labels(case="neg").set(-math.inf)
    g.labels(case="nan").set(math.nan)

    text = generate_metrics(registry, openmetrics=openmetrics)
    assert 'edge{case="pos"} +Inf\n' in text
    assert 'edge{case="neg"} -Inf\n' in text
    assert 'edge{case="nan"} NaN\n' in text

    families = openmetrics_families(registry) if openmetrics else text_families(registry)
    values = {s.labels["case"]: s.value for s in families["edge"].samples}
    assert values["pos"] == math.inf
    assert values["neg"] == -math.inf
    assert math.isnan(values["nan"])
    assert len(values) == 3


# -- histogram -----------------------------------------------------------------------------
OBSERVATIONS = [0.05, 0.1, 0.5, 5.0, 50.0]  # 0.1 sits on a bound: le is inclusive


def _histogram_rows(name: str, labels: dict[str, str]) -> list[Row]:
    return [
        (f"{name}_bucket", {**labels, "le": "0.1"}, 2.0),
        (f"{name}_bucket", {**labels, "le": "1.0"}, 3.0),
        (f"{name}_bucket", {**labels, "le": "10.0"}, 4.0),
        (f"{name}_bucket", {**labels, "le": "+Inf"}, 5.0),
        (f"{name}_count", labels, 5.0),
        (f"{name}_sum", labels, pytest.approx(sum(OBSERVATIONS))),  # type: ignore[list-item]
    ]


def test_histogram_without_labels_has_cumulative_buckets_count_and_sum_in_text(
    registry: CollectorRegistry,
) -> None:
    h = Histogram("latency_seconds", "Latency", buckets=[0.1, 1, 10], registry=registry)
    for v in OBSERVATIONS:
        h.observe(v)

    fam = text_families(registry)["latency_seconds"]

    assert (fam.type, fam.documentation) == ("histogram", "Latency")
    assert rows(fam) == _histogram_rows("latency_seconds", {})
    assert_no_created(fam)


def test_histogram_without_labels_has_cumulative_buckets_count_sum_and_created_in_openmetrics(
    registry: CollectorRegistry,
) -> None:
    before = time.time()
    h = Histogram("latency_seconds", "Latency", buckets=[0.1, 1, 10], registry=registry)
    after = time.time()
    for v in OBSERVATIONS:
        h.observe(v)

    fam = openmetrics_families(registry)["latency_seconds"]

    assert (fam.type, fam.documentation) == ("histogram", "Latency")
    assert rows(fam) == _histogram_rows("latency_seconds", {})
    assert_created_between(fam, [{}], before, after)


def test_histogram_with_labels_and_defaults_round_trips_through_both_parsers(
    registry: CollectorRegistry,
) -> None:
    before = time.time()
    h = Histogram(
        "rpc_seconds",
        "RPC latency",
        ["service", "zone"],
        default_labels={"zone": TRICKY},
        buckets=[0.1, 1, 10],
        registry=registry,
    )
    for v in OBSERVATIONS:
        h.labels(service="users").observe(v)
        h.labels(service=TRICKY, zone="z2").observe(v)
    after = time.time()

    first = {"service": "users", "zone": TRICKY}
    second = {"service": TRICKY, "zone": "z2"}
    expected = _histogram_rows("rpc_seconds", first) + _histogram_rows("rpc_seconds", second)
    text_fam = text_families(registry)["rpc_seconds"]
    om_fam = openmetrics_families(registry)["rpc_seconds"]

    assert rows(text_fam) == expected
    assert_no_created(text_fam)
    assert rows(om_fam) == expected
    assert_created_between(om_fam, [first, second], before, after)


def test_histogram_bounds_are_spelled_as_prometheus_client_spells_them(
    registry: CollectorRegistry,
) -> None:
    # `le` is part of a series' identity in Prometheus: it must be spelled as other
    # clients spell it (Go's float formatting), not just parse to the same float.
    odd = [1e-7, 0.3, 2, 1234567.5, 1e15, 1e22]
    Histogram("work_seconds", "Work", registry=registry).observe(0.3)
    Histogram("odd_bounds", "Odd", buckets=odd, registry=registry).observe(3)

    for families in (text_families(registry), openmetrics_families(registry)):
        default = [s for s in families["work_seconds"].samples if s.name.endswith("_bucket")]
        assert [s.labels["le"] for s in default] == [
            *map(floatToGoString, DEFAULT_BUCKETS),
            "+Inf",
        ]
        assert [s.value for s in default] == [float(b >= 0.3) for b in DEFAULT_BUCKETS] + [1.0]
        buckets = [s for s in families["odd_bounds"].samples if s.name.endswith("_bucket")]
        assert [s.labels["le"] for s in buckets] == [*map(floatToGoString, odd), "+Inf"]
        assert [s.value for s in buckets] == [0, 0, 0, 1, 1, 1, 1]


# -- summary -------------------------------------------------------------------------------
def test_summary_exposes_count_and_sum_and_created_only_in_openmetrics(
    registry: CollectorRegistry,
) -> None:
    before = time.time()
    s = Summary("payload_bytes", "Payload sizes", ["service"], registry=registry)
    plain = Summary("batch_size", "Batch sizes", registry=registry)
    s.labels(service=TRICKY).observe(100)  # a labeled series is created by labels()
    s.labels(service=TRICKY).observe(250.5)
    plain.observe(3)
    after = time.time()

    expected_labeled = [
        ("payload_bytes_count", {"service": TRICKY}, 2.0),
        ("payload_bytes_sum", {"service": TRICKY}, 350.5),
    ]
    expected_plain: list[Row] = [("batch_size_count", {}, 1.0), ("batch_size_sum", {}, 3.0)]
    text = text_families(registry)
    om = openmetrics_families(registry)

    for families in (text, om):
        assert families["payload_bytes"].type == "summary"
        assert rows(families["payload_bytes"]) == expected_labeled
        assert rows(families["batch_size"]) == expected_plain
    assert_no_created(text["payload_bytes"])
    assert_no_created(text["batch_size"])
    assert_created_between(om["payload_bytes"], [{"service": TRICKY}], before, after)
    assert_created_between(om["batch_size"], [{}], before, after)


# -- info ----------------------------------------------------------------------------------
def test_info_is_a_gauge_named_info_in_text(registry: CollectorRegistry) -> None:
    Info("build", "Build facts", registry=registry).info({"version": "1.2.3", "commit": TRICKY})
    host = Info("host", "Host facts", ["dc"], default_labels={"dc": TRICKY}, registry=registry)
    host.labels(dc="eu").info({"os": "linux"})

    families = text_families(registry)

    assert (families["build_info"].type, families["build_info"].documentation) == (
        "gauge",
        "Build facts",
    )
    assert rows(families["build_info"]) == [
        ("build_info", {"version": "1.2.3", "commit": TRICKY}, 1.0)
    ]
    assert families["host_info"].type == "gauge"
    assert rows(families["host_info"]) == [
        ("host_info", {"dc": TRICKY}, 1.0),  # the all-defaults series exists from the start
        ("host_info", {"dc": "eu", "os": "linux"}, 1.0),
    ]
    assert "build" not in families
    assert_no_created(families["build_info"])


def test_info_is_an_info_family_in_openmetrics(registry: CollectorRegistry) -> None:
    Info("build_info", "Build facts", registry=registry).info({"version": TRICKY})
    host = Info("host", "Host facts", ["dc"], default_labels={"dc": TRICKY}, registry=registry)
    host.info({"os": "linux"})  # every label has a default: the metric itself records

    families = openmetrics_families(registry)

    assert (families["build"].type, families["build"].documentation) == ("info", "Build facts")
    assert rows(families["build"]) == [("build_info", {"version": TRICKY}, 1.0)]
    assert families["host"].type == "info"
    assert rows(families["host"]) == [("host_info", {"dc": TRICKY, "os": "linux"}, 1.0)]
    assert_no_created(families["build"])


# -- enum ----------------------------------------------------------------------------------
STATES = ["starting", "running", 'stopped "hard" \\ ✓\n']


def _enum_rows(name: str, labels: dict[str, str], current: str) -> list[Row]:
    return [(name, {**labels, name: s}, 1.0 if s == current else 0.0) for s in STATES]


def test_enum_is_a_gauge_with_one_sample_per_state_in_text(registry: CollectorRegistry) -> None:
    Enum("task_state", "Task state", states=STATES, registry=registry).state("running")
    worker = Enum("worker_state", "Worker state", ["worker"], states=STATES, registry=registry)
    worker.labels(worker=TRICKY).state(STATES[2])
    Enum("idle_state", "Never set", states=STATES, registry=registry)

    families = text_families(registry)

    assert (families["task_state"].type, families["task_state"].documentation) == (
        "gauge",
        "Task state",
    )
    assert rows(families["task_state"]) == _enum_rows("task_state", {}, "running")
    assert families["worker_state"].type == "gauge"
    assert rows(families["worker_state"]) == _enum_rows(
        "worker_state", {"worker": TRICKY}, STATES[2]
    )
    assert rows(families["idle_state"]) == _enum_rows("idle_state", {}, "starting")


def test_enum_is_a_stateset_with_one_sample_per_state_in_openmetrics(
    registry: CollectorRegistry,
) -> None:
    Enum("task_state", "Task state", states=STATES, registry=registry).state(STATES[2])
    worker = Enum("worker_state", "Worker state", ["worker"], states=STATES, registry=registry)
    worker.labels(worker=TRICKY).state("starting")

    families = openmetrics_families(registry)

    assert (families["task_state"].type, families["task_state"].documentation) == (
        "stateset",
        "Task state",
    )
    assert rows(families["task_state"]) == _enum_rows("task_state", {}, STATES[2])
    assert families["worker_state"].type == "stateset"
    assert rows(families["worker_state"]) == _enum_rows(
        "worker_state", {"worker": TRICKY}, "starting"
    )
    assert_no_created(families["task_state"])


def test_enum_label_named_like_its_prefixed_name_never_makes_a_duplicate_label() -> None:
    # The state label of an Enum is its exposed name, prefix included ("shop_state"),
    # as in prometheus_client. A label of that name must be refused (as "state" is),
    # or the samples would carry the label twice, which no parser accepts.
    registry = CollectorRegistry(prefix="shop")
    with suppress(ValueError):  # LabelValidationException is one
        e = Enum("state", "State", ["shop_state"], states=["a", "b"], registry=registry)
        e.labels(shop_state="x").state("b")

    text_families(registry)
    openmetrics_families(registry)


# -- names, help, framing ------------------------------------------------------------------
def test_registry_prefix_is_prepended_to_every_family_and_to_the_enum_label() -> None:
    registry = CollectorRegistry(prefix="shop")
    Counter("orders", "Orders", registry=registry).inc()
    Gauge("open_carts", "Carts", registry=registry).set(2)
    Enum("state", "State", states=["open", "closed"], registry=registry).state("closed")
    Info("build", "Build", registry=registry).info({"version": "1"})

    text = text_families(registry)
    om = openmetrics_families(registry)

    assert sorted(text) == ["shop_build_info", "shop_open_carts", "shop_orders", "shop_state"]
    assert sorted(om) == ["shop_build", "shop_open_carts", "shop_orders", "shop_state"]
    assert rows(om["shop_orders"]) == [("shop_orders_total", {}, 1.0)]
    assert rows(om["shop_state"]) == [
        ("shop_state", {"shop_state": "open"}, 0.0),
        ("shop_state", {"shop_state": "closed"}, 1.0),
    ]
    assert rows(text["shop_build_info"]) == [("shop_build_info", {"version": "1"}, 1.0)]


HELP = 'Line one\nback\\slash and "quotes" ✓'


def test_help_text_escapes_backslash_and_newline_in_the_text_format(
    registry: CollectorRegistry,
) -> None:
    Gauge("documented", HELP, registry=registry).set(1)

    text = generate_metrics(registry)

    assert '# HELP documented Line one\\nback\\\\slash and "quotes" ✓\n' in text
    assert text_families(registry)["documented"].documentation == HELP


def test_help_text_escapes_backslash_newline_and_quote_in_openmetrics(
    registry: CollectorRegistry,
) -> None:
    Counter("documented", HELP, registry=registry).inc()

    text = generate_metrics(registry, openmetrics=True)

    assert '# HELP documented Line one\\nback\\\\slash and \\"quotes\\" ✓\n' in text
    assert openmetrics_families(registry)["documented"].documentation == HELP


def test_openmetrics_ends_with_eof_and_text_does_not(registry: CollectorRegistry) -> None:
    Counter("c", "C", registry=registry).inc()
    Gauge("g", "G", registry=registry).set(1)

    om = generate_metrics(registry, openmetrics=True)
    text = generate_metrics(registry)

    assert om.endswith("\n# EOF\n")
    assert om.split("\n")[-2:] == ["# EOF", ""]
    assert om.count("# EOF") == 1
    assert "# EOF" not in text
    assert text.endswith("\n")


def test_an_empty_registry_renders_nothing_in_text_and_only_eof_in_openmetrics(
    registry: CollectorRegistry,
) -> None:
    assert generate_metrics(registry) == ""
    assert generate_metrics(registry, openmetrics=True) == "# EOF\n"


def test_created_samples_appear_only_in_openmetrics(registry: CollectorRegistry) -> None:
    Counter("c", "C", registry=registry).inc()
    Histogram("h", "H", registry=registry).observe(1)
    Summary("s", "S", registry=registry).observe(1)
    Gauge("g", "G", registry=registry).set(1)

    assert "_created" not in generate_metrics(registry)
    om = openmetrics_families(registry)
    assert [s.name for f in om.values() for s in f.samples if s.name.endswith("_created")] == [
        "c_created",
        "h_created",
        "s_created",
    ]


@pytest.mark.parametrize("kind", [Counter, Gauge])
def test_an_increment_too_large_for_a_float_never_breaks_the_exposition(
    registry: CollectorRegistry, kind: type[Counter] | type[Gauge]
) -> None:
    # An int beyond float range must be refused when recorded (as Gauge.set refuses
    # it) or exposed somehow; accepting it and failing every later scrape of the
    # whole registry loses all the other metrics too.
    Gauge("other", "Other", registry=registry).set(1)
    metric = kind("huge", "Huge", registry=registry)
    with suppress(OverflowError, ValueError):
        metric.inc(10**400)

    assert rows(text_families(registry)["other"]) == [("other", {}, 1.0)]
    assert rows(openmetrics_families(registry)["other"]) == [("other", {}, 1.0)]


# -- async twin ----------------------------------------------------------------------------
def _fill_every_type(registry: CollectorRegistry, gauges: int) -> None:
    c = Counter("c", "Counter", ["path"], registry=registry)
    c.labels(path=TRICKY).inc(3, exemplar={"trace_id": "abc"})
    h = Histogram("h", "Histogram", ["path"], buckets=[1, 2], registry=registry)
    h.labels(path="/").observe(1.5, exemplar={"trace_id": "def"})
    Summary("s", "Summary", registry=registry).observe(4)
    Info("i", "Info", registry=registry).info({"version": TRICKY})
    Enum("e", "Enum", states=["a", "b"], registry=registry).state("b")
    for n in range(gauges):
        Gauge(f"g{n}", f"Gauge {n}", registry=registry).set(n)


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
async def test_agenerate_metrics_renders_the_same_text_as_generate_metrics(
    registry: CollectorRegistry, openmetrics: bool
) -> None:
    _fill_every_type(registry, gauges=450)  # more families than one render chunk holds

    expected = generate_metrics(registry, openmetrics=openmetrics)
    actual = await agenerate_metrics(registry, openmetrics=openmetrics)

    assert actual == expected
    assert expected.count("\n") > 450 * 3


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
async def test_agenerate_metrics_of_an_empty_registry_matches_generate_metrics(
    registry: CollectorRegistry, openmetrics: bool
) -> None:
    expected = generate_metrics(registry, openmetrics=openmetrics)
    assert await agenerate_metrics(registry, openmetrics=openmetrics) == expected


# -- exemplars -----------------------------------------------------------------------------
def test_counter_exemplar_appears_in_openmetrics(registry: CollectorRegistry) -> None:
    c = Counter("requests", "Requests", ["path"], registry=registry)
    before = time.time()
    c.labels(path="/a").inc(2, exemplar={"trace_id": "abc123", "span_id": "7"})
    after = time.time()
    c.labels(path="/b").inc()

    samples = {
        s.labels["path"]: s
        for s in openmetrics_families(registry)["requests"].samples
        if s.name == "requests_total"
    }

    exemplar = samples["/a"].exemplar
    assert exemplar is not None
    assert exemplar.labels == {"trace_id": "abc123", "span_id": "7"}
    assert exemplar.value == 2.0
    assert exemplar.timestamp is not None
    assert before - 0.001 <= float(exemplar.timestamp) <= after + 0.001
    assert samples["/b"].exemplar is None


def test_histogram_exemplar_appears_on_its_bucket_in_openmetrics(
    registry: CollectorRegistry,
) -> None:
    h = Histogram("latency_seconds", "Latency", buckets=[0.1, 1, 10], registry=registry)
    h.observe(0.05)
    before = time.time()
    h.observe(0.5, exemplar={"trace_id": "def456"})
    after = time.time()
    h.observe(5)

    samples = openmetrics_families(registry)["latency_seconds"].samples
    with_exemplar = [s for s in samples if s.exemplar is not None]

    assert [(s.name, s.labels) for s in with_exemplar] == [
        ("latency_seconds_bucket", {"le": "1.0"})
    ]
    exemplar = with_exemplar[0].exemplar
    assert exemplar is not None
    assert exemplar.labels == {"trace_id": "def456"}
    assert exemplar.value == 0.5
    assert exemplar.timestamp is not None
    assert before - 0.001 <= float(exemplar.timestamp) <= after + 0.001


@pytest.mark.parametrize("label_name", ["bad name", "1x", "a-b", ""])
def test_exemplar_with_an_invalid_label_name_never_breaks_the_openmetrics_exposition(
    registry: CollectorRegistry, label_name: str
) -> None:
    # Refusing the exemplar (as a bad metric label is refused) is fine; rendering
    # `# {bad name="x"}`, which makes a scraper drop the whole scrape, is not.
    c = Counter("requests", "Requests", registry=registry)
    h = Histogram("latency_seconds", "Latency", buckets=[1], registry=registry)
    with suppress(ValueError):  # LabelValidationException is one
        c.inc(exemplar={label_name: "x"})
    with suppress(ValueError):  # LabelValidationException is one
        h.observe(0.5, exemplar={label_name: "x"})

    families = openmetrics_families(registry)

    assert set(families) == {"requests", "latency_seconds"}


def test_exemplars_never_appear_in_the_text_format(registry: CollectorRegistry) -> None:
    Counter("requests", "Requests", registry=registry).inc(exemplar={"trace_id": "abc123"})
    h = Histogram("latency_seconds", "Latency", buckets=[1], registry=registry)
    h.observe(0.5, exemplar={"trace_id": "def456"})

    text = generate_metrics(registry)
    families = text_families(registry)

    assert "trace_id" not in text
    assert [line for line in text.split("\n") if not line.startswith("# ") and "#" in line] == []
    assert all(s.exemplar is None for f in families.values() for s in f.samples)
    assert rows(families["requests"]) == [("requests_total", {}, 1.0)]
    assert "trace_id" in generate_metrics(registry, openmetrics=True)  # recorded, just not shown
