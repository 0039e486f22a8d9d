"""UTF-8 metric and label names (Prometheus 3): escaping, units, collisions, Redis.

prometheus_client 0.26 is the oracle for escaped names: its ``escape_metric_name``
/ ``escape_label_name`` and its text format ``generate_latest(registry, escaping)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest
from prometheus_client.openmetrics import exposition as pc_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from apytheus import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from apytheus._names import ESCAPINGS, escape_label_name, escape_metric_name
from apytheus.backends.redis import RedisBackend
from apytheus.exceptions import DuplicateTimeseries, LabelValidationException
from apytheus.exposition import generate_metrics, render
from apytheus.metrics import CustomCollector
from apytheus.validation import (
    disable_legacy_validation,
    enable_legacy_validation,
    get_legacy_validation,
)

NAMES = [
    "my.metric",
    "a-b",
    "1abc",
    "é",
    "日本語",
    "a:b",
    "_x",
    "x__y",
    'a"b',
    "a\\b",
    "a\nb",
    "a b",
    "U__x",
    "a_b.c",
    "💡",
    "a{b}|c",
    "classic_name",
    "with:colon_total",
]


@pytest.mark.parametrize("escaping", ESCAPINGS)
@pytest.mark.parametrize("name", NAMES)
def test_escaped_names_are_prometheus_clients(name: str, escaping: str) -> None:
    assert escape_metric_name(name, escaping) == pc_openmetrics.escape_metric_name(name, escaping)
    assert escape_label_name(name, escaping) == pc_openmetrics.escape_label_name(name, escaping)


@pytest.fixture
def created_off() -> Iterator[None]:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    yield
    prometheus_client.enable_created_metrics()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("escaping", ESCAPINGS)
@pytest.mark.parametrize("name", NAMES)
def test_the_text_format_is_prometheus_clients_byte_for_byte(
    created_off: None, name: str, escaping: str
) -> None:
    label = "x" + name if name.startswith("_") else name  # `__` starts no label name
    doc = "Doc \\ with\nnewline"
    value = 'v"a\\l\nue'
    ours = CollectorRegistry()
    Gauge(name, doc, [label], registry=ours).labels(value).set(2.5)
    Counter(name + "_c", "Counted", registry=ours).inc(3)
    theirs = prometheus_client.CollectorRegistry()
    prometheus_client.Gauge(name, doc, [label], registry=theirs).labels(value).set(2.5)
    prometheus_client.Counter(name + "_c", "Counted", registry=theirs).inc(3)
    expected = prometheus_client.generate_latest(theirs, escaping).decode()
    assert generate_metrics(ours, escaping=escaping) == expected


@pytest.mark.parametrize("escaping", ESCAPINGS)
def test_classic_names_render_as_before_except_that_dots_doubles_underscores(
    escaping: str,
) -> None:
    registry = CollectorRegistry()
    Counter("http_requests", "Requests", ["method_name"], registry=registry).labels("GET").inc()
    text = generate_metrics(registry, escaping=escaping)
    if escaping == "dots":
        assert 'http__requests__total{method__name="GET"} 1.0\n' in text
    else:
        assert text == generate_metrics(registry)
        assert 'http_requests_total{method_name="GET"} 1.0\n' in text


def test_openmetrics_under_allow_utf8_quotes_names_everywhere() -> None:
    registry = CollectorRegistry()
    c = Counter("http.requests", "Requests", ["http.method"], registry=registry, unit="seconds")
    c.labels("GET").inc(2, exemplar={"trace.id": "abc"})
    Enum("job.state", "State", states=["a", "b"], registry=registry)
    text = generate_metrics(registry, openmetrics=True, escaping="allow-utf-8")
    assert '# HELP "http.requests_seconds" Requests\n' in text
    assert '# TYPE "http.requests_seconds" counter\n' in text
    assert '# UNIT "http.requests_seconds" seconds\n' in text
    sample = '{"http.requests_seconds_total","http.method"="GET"} 2.0'
    assert f'{sample} # {{"trace.id"="abc"}} 2.0 ' in text
    assert '{"job.state","job.state"="a"} 1.0\n' in text
    # the same exposition under underscores: every name escaped, also the exemplar's
    plain = generate_metrics(registry, openmetrics=True)
    assert "# UNIT http_requests_seconds seconds\n" in plain
    assert re.search(
        r'http_requests_seconds_total\{http_method="GET"\} 2\.0 # \{trace_id="abc"\}', plain
    )
    assert 'job_state{job_state="a"} 1.0\n' in plain
    # both parse with prometheus_client's OpenMetrics parser, to the same names
    for exposition, name in ((text, "http.requests_seconds"), (plain, "http_requests_seconds")):
        parsed = text_string_to_metric_families(exposition)  # type: ignore[no-untyped-call]
        families = {f.name: f for f in parsed}
        assert families[name].unit == "seconds"
        assert families[name].samples[0].value == 2.0


def test_units_are_appended_once_and_bad_units_refused() -> None:
    registry = CollectorRegistry()
    assert Histogram("wait_seconds", "W", unit="seconds", registry=registry).name == "wait_seconds"
    assert Summary("size", "S", unit="bytes", registry=registry).name == "size_bytes"
    assert Counter("sent_total", "S", unit="bytes", registry=registry).name == "sent_bytes"
    assert Gauge("temp", "T", unit="celsius", registry=registry).name == "temp_celsius"
    text = generate_metrics(registry, openmetrics=True)
    assert "# UNIT sent_bytes bytes\n" in text and "sent_bytes_total 0.0\n" in text
    assert "# UNIT" not in generate_metrics(registry)  # the text format has no units
    before = generate_metrics(registry)
    for unit, error in (("sec onds", ValueError), ("", None), ("ß", ValueError), (3, TypeError)):
        if error is None:
            continue
        with pytest.raises(error):
            Gauge("g", "G", unit=unit, registry=registry)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot have a unit"):
        Info("build", "B", unit="seconds", registry=registry)
    with pytest.raises(ValueError, match="cannot have a unit"):
        Enum("st", "S", states=["a"], unit="seconds", registry=registry)
    assert generate_metrics(registry) == before


def test_names_that_escape_alike_are_refused_at_registration() -> None:
    registry = CollectorRegistry()
    Counter("http.requests", "R", registry=registry)
    before = generate_metrics(registry, escaping="allow-utf-8")
    for name in ("http_requests", "http-requests", "http requests"):
        with pytest.raises(DuplicateTimeseries, match="underscores escaping"):
            Counter(name, "R", registry=registry)
    # a classic name that is what `values` escaping makes of one already exposed
    with pytest.raises(DuplicateTimeseries, match="values escaping"):
        Gauge("U__http_2e_requests__total", "R", registry=registry)
    assert generate_metrics(registry, escaping="allow-utf-8") == before
    Gauge("http:requests", "Colons are classic in metric names", registry=registry)


def test_a_custom_collector_family_that_escapes_like_a_metric_is_left_out() -> None:
    registry = CollectorRegistry()
    Counter("jobs_done", "Done", registry=registry).inc()

    class Clashing(CustomCollector):
        def collect(self) -> Iterator[Any]:
            c = Counter("jobs.done", "Same name once escaped", registry=None)
            c.inc(5)
            yield c
            g = Gauge("other.one", "Fine", registry=None)
            g.set(1)
            yield g

    registry.register(Clashing())
    text = generate_metrics(registry)
    assert "jobs_done_total 1.0\n" in text and "jobs_done_total 5.0" not in text
    assert "other_one 1.0\n" in text
    assert 'apytheus_collector_errors_total{collector="clashing"} 1.0' in text
    # under allow-utf-8 the two names differ: both are shown
    utf8 = generate_metrics(registry, escaping="allow-utf-8")
    assert '{"jobs.done_total"} 5.0\n' in utf8 and "jobs_done_total 1.0\n" in utf8


def test_label_names_may_be_utf8_but_not_reserved() -> None:
    registry = CollectorRegistry()
    h = Histogram("h", "H", ["le.x", "é"], buckets=(1.0,), registry=registry)
    h.labels("a", "b").observe(0.5)
    text = generate_metrics(registry, escaping="allow-utf-8")
    assert '"le.x"="a","é"="b",le="1.0"} 1.0\n' in text
    assert 'h_bucket{le_x="a",_="b",le="1.0"} 1.0\n' in generate_metrics(registry)
    for names in (["le"], ["__x"], ["a", "a"]):
        with pytest.raises(LabelValidationException):
            Histogram("h2", "H", names, registry=registry)
    with pytest.raises(LabelValidationException):
        Summary("s2", "S", ["quantile"], registry=registry)


def test_legacy_validation_refuses_utf8_names_until_turned_off() -> None:
    assert get_legacy_validation() is False
    enable_legacy_validation()
    try:
        with pytest.raises(ValueError, match="legacy"):
            Counter("a.b", "A", registry=CollectorRegistry())
        with pytest.raises(LabelValidationException, match="legacy"):
            Counter("ab", "A", ["a.b"], registry=CollectorRegistry())
        Counter("a_b", "A", ["a_b"], registry=CollectorRegistry())
    finally:
        disable_legacy_validation()
    Counter("a.b", "A", registry=CollectorRegistry())


def test_protobuf_carries_utf8_names_raw_only_when_asked() -> None:
    registry = CollectorRegistry()
    Counter("http.requests", "R", ["http.method"], registry=registry).labels("GET").inc()
    proto = (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
    )
    escaped, _ = render(registry, proto)
    raw, _ = render(registry, proto + ";escaping=allow-utf-8")
    assert b"http_requests_total" in escaped and b"http.requests" not in escaped
    assert b"http.requests_total" in raw and b"http.method" in raw


# -- Redis ---------------------------------------------------------------------------


def test_utf8_names_on_redis_keep_distinct_keys_and_one_slot_per_metric(
    redis_backend: RedisBackend,
) -> None:
    registry = CollectorRegistry()
    # these two collided under the old `{prefix|name}` layout only if a prefix had `|`;
    # names with `|`, `{`, `}` and `%` must each get keys of their own
    names = ["a|b", "a%7Cb", "x{y}", "日本.語", "plain"]
    counters = [Counter(n, "C", ["ラベル"], registry=registry) for n in names]
    for i, c in enumerate(counters):
        c.labels("値").inc(i + 1)
    Histogram("wait.time", "W", buckets=(1.0,), registry=registry, unit="seconds").observe(0.5)
    assert redis_backend.flush_sync()
    text = generate_metrics(registry, escaping="allow-utf-8", openmetrics=True)
    for i, name in enumerate(names):
        shown = f'"{name}_total"' if name != "plain" else "plain_total"
        pair = '"ラベル"="値"'
        line = f"{{{shown},{pair}}}" if name != "plain" else f"plain_total{{{pair}}}"
        assert f"{line} {float(i + 1)}\n" in text, line
    assert '{"wait.time_seconds_count"} 1.0\n' in text
    client = redis_backend._store.client
    # the created timestamp comes from Redis, where `a|b` has its own (encoded) key
    created = client.hvals(f"{{{redis_backend.key_prefix}|a%7Cb}}:c")
    assert len(created) == 1
    assert f'{{"a|b_created","ラベル"="値"}} {float(created[0])!r}\n' in text
    keys = sorted(k.decode() for k in client.keys(f"{{{redis_backend.key_prefix}|*"))
    tags = {re.match(r"(\{[^}]*\})", k).group(1) for k in keys}  # type: ignore[union-attr]
    # one hash tag per metric (its keys share a Cluster slot), each metric its own
    p = redis_backend.key_prefix
    mine = ["a%7Cb", "a%257Cb", "x%7By%7D", "日本.語", "plain", "wait.time_seconds"]
    assert {f"{{{p}|{m}}}" for m in mine} <= tags
    for m in mine:
        assert {k for k in keys if k.startswith(f"{{{p}|{m}}}:")} >= {f"{{{p}|{m}}}:v"}
    assert all(k.count("{") == 1 and k.count("}") == 1 for k in keys)


@pytest.mark.parametrize("escaping", ESCAPINGS)
@pytest.mark.parametrize("key", ["service.version", "é", "plain_key", "a-b"])
def test_info_and_summary_are_prometheus_clients_byte_for_byte(
    created_off: None, key: str, escaping: str
) -> None:
    """(A histogram's ``le`` comes last in apytheus, sorted among the labels there.)"""
    ours = CollectorRegistry()
    Info("build", "Build", registry=ours).info({key: "1.2"})
    Summary("size.b", "S", [key], registry=ours).labels("y").observe(3)
    theirs = prometheus_client.CollectorRegistry()
    prometheus_client.Info("build", "Build", registry=theirs).info({key: "1.2"})
    prometheus_client.Summary("size.b", "S", [key], registry=theirs).labels("y").observe(3)
    expected = prometheus_client.generate_latest(theirs, escaping).decode()
    assert generate_metrics(ours, escaping=escaping) == expected


def test_names_that_escape_to_reserved_or_repeated_labels_are_refused() -> None:
    registry = CollectorRegistry()
    for make in (
        lambda: Counter("c", "C", ["._name__"], registry=registry),  # `__name__` once escaped
        lambda: Enum("a.b", "E", ["a_b"], states=["s"], registry=registry),  # the state label
    ):
        with pytest.raises(LabelValidationException):
            make()
    assert registry.collect() == []
    info = Info("i", "I", ["a_b"], registry=registry).labels("x")
    with pytest.raises(LabelValidationException, match="'a_b' and 'a.b'"):
        info.info({"a.b": "2"})
    assert 'i_info{a_b="x"} 1.0' in generate_metrics(registry)


def test_a_counter_keeps_its_series_name_in_every_format() -> None:
    from test_protobuf_encoder import decode

    registry = CollectorRegistry()
    Counter("x", "X", unit="total", registry=registry).inc(5)
    Counter("jobs", "J", registry=registry).inc(1)
    text = generate_metrics(registry)
    assert "x_total_total 5.0\n" in text and "jobs_total 1.0\n" in text
    body, _ = render(
        registry,
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
    )
    assert sorted(f.name for f in decode(body)) == ["jobs_total", "x_total_total"]


def test_a_prometheus_client_family_keeps_its_unit() -> None:
    from prometheus_client.core import GaugeMetricFamily

    registry = CollectorRegistry()

    class Temperatures(CustomCollector):
        def collect(self) -> Iterator[Any]:
            yield GaugeMetricFamily("temp_celsius", "Temperature", value=21.5, unit="celsius")

    registry.register(Temperatures())
    assert "# UNIT temp_celsius celsius\n" in generate_metrics(registry, openmetrics=True)
