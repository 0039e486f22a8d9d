"""The protobuf encoder, decoded by the official protobuf runtime as the oracle.

The message classes are built at test time from a ``FileDescriptorProto`` with
the field numbers and types of prometheus/client_model's ``metrics.proto``, so
the bytes are read exactly as Prometheus' decoder reads them (by field number
and wire type). The runtime is a test oracle only: apytheus never imports it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest
from prometheus_client.core import GaugeMetricFamily

from apytheus import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary
from apytheus._collect.build import build_family
from apytheus._collect.read import collect_parts, collect_sync
from apytheus._expose.formats import protobuf
from apytheus._expose.render_protobuf import protobuf_chunks
from apytheus._labels import EMPTY_LABELS, LabelSet
from apytheus._names import escape_label_name, escape_metric_name
from apytheus._samples import Exemplar, MetricFamily, Sample

pytest.importorskip("google.protobuf", reason="the protobuf runtime decodes the output")
descriptor_pb2: Any = pytest.importorskip("google.protobuf.descriptor_pb2")
descriptor_pool: Any = pytest.importorskip("google.protobuf.descriptor_pool")
message_factory: Any = pytest.importorskip("google.protobuf.message_factory")
timestamp_pb2: Any = pytest.importorskip("google.protobuf.timestamp_pb2")

# MetricType
COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM, GAUGE_HISTOGRAM = range(6)

# A label value with what the text formats must escape, and non-ASCII text.
TRICKY = 'say "hi" \\ back\nnext line, ünïcødé ✓ 日本 🎉'


# -- the schema and the decoder --------------------------------------------------------------
# (name, number, type, message or enum type name, repeated)
Field = tuple[str, int, str, str, bool]

_SCHEMA: dict[str, list[Field]] = {
    "LabelPair": [("name", 1, "string", "", False), ("value", 2, "string", "", False)],
    "Gauge": [("value", 1, "double", "", False)],
    "Counter": [
        ("value", 1, "double", "", False),
        ("exemplar", 2, "message", "Exemplar", False),
        ("created_timestamp", 3, "message", ".google.protobuf.Timestamp", False),
    ],
    "Quantile": [("quantile", 1, "double", "", False), ("value", 2, "double", "", False)],
    "Summary": [
        ("sample_count", 1, "uint64", "", False),
        ("sample_sum", 2, "double", "", False),
        ("quantile", 3, "message", "Quantile", True),
        ("created_timestamp", 4, "message", ".google.protobuf.Timestamp", False),
    ],
    "Untyped": [("value", 1, "double", "", False)],
    "Histogram": [
        ("sample_count", 1, "uint64", "", False),
        ("sample_count_float", 4, "double", "", False),
        ("sample_sum", 2, "double", "", False),
        ("bucket", 3, "message", "Bucket", True),
        ("created_timestamp", 15, "message", ".google.protobuf.Timestamp", False),
        ("schema", 5, "sint32", "", False),
        ("zero_threshold", 6, "double", "", False),
        ("zero_count", 7, "uint64", "", False),
        ("zero_count_float", 8, "double", "", False),
        ("negative_span", 9, "message", "BucketSpan", True),
        ("negative_delta", 10, "sint64", "", True),
        ("negative_count", 11, "double", "", True),
        ("positive_span", 12, "message", "BucketSpan", True),
        ("positive_delta", 13, "sint64", "", True),
        ("positive_count", 14, "double", "", True),
        ("exemplars", 16, "message", "Exemplar", True),
    ],
    "Bucket": [
        ("cumulative_count", 1, "uint64", "", False),
        ("cumulative_count_float", 4, "double", "", False),
        ("upper_bound", 2, "double", "", False),
        ("exemplar", 3, "message", "Exemplar", False),
    ],
    "BucketSpan": [("offset", 1, "sint32", "", False), ("length", 2, "uint32", "", False)],
    "Exemplar": [
        ("label", 1, "message", "LabelPair", True),
        ("value", 2, "double", "", False),
        ("timestamp", 3, "message", ".google.protobuf.Timestamp", False),
    ],
    "Metric": [
        ("label", 1, "message", "LabelPair", True),
        ("gauge", 2, "message", "Gauge", False),
        ("counter", 3, "message", "Counter", False),
        ("summary", 4, "message", "Summary", False),
        ("untyped", 5, "message", "Untyped", False),
        ("histogram", 7, "message", "Histogram", False),
        ("timestamp_ms", 6, "int64", "", False),
    ],
    "MetricFamily": [
        ("name", 1, "string", "", False),
        ("help", 2, "string", "", False),
        ("type", 3, "enum", "MetricType", False),
        ("metric", 4, "message", "Metric", True),
        ("unit", 5, "string", "", False),
    ],
}


@functools.cache
def metric_family_class() -> Any:
    """``io.prometheus.client.MetricFamily``, from a descriptor built here (proto2)."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="io/prometheus/client/metrics.proto",
        package="io.prometheus.client",
        syntax="proto2",
        dependency=["google/protobuf/timestamp.proto"],
    )
    enum = fdp.enum_type.add(name="MetricType")
    for number, name in enumerate(
        ["COUNTER", "GAUGE", "SUMMARY", "UNTYPED", "HISTOGRAM", "GAUGE_HISTOGRAM"]
    ):
        enum.value.add(name=name, number=number)
    fd = descriptor_pb2.FieldDescriptorProto
    for message, fields in _SCHEMA.items():
        proto = fdp.message_type.add(name=message)
        for name, number, kind, type_name, repeated in fields:
            field = proto.field.add(
                name=name,
                number=number,
                type=getattr(fd, f"TYPE_{kind.upper()}"),
                label=fd.LABEL_REPEATED if repeated else fd.LABEL_OPTIONAL,
            )
            if type_name:
                field.type_name = (
                    type_name if type_name.startswith(".") else f".io.prometheus.client.{type_name}"
                )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(fdp.SerializeToString())
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("io.prometheus.client.MetricFamily")
    )


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """A varint at ``pos``: its value and the position after it."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def decode(data: bytes) -> list[Any]:
    """Varint-delimited MetricFamily messages, each checked to hold only schema fields."""
    cls = metric_family_class()
    out: list[Any] = []
    pos = 0
    while pos < len(data):
        size, pos = read_varint(data, pos)
        raw = data[pos : pos + size]
        assert len(raw) == size, "a message is cut short"
        pos += size
        message = cls()
        message.ParseFromString(raw)
        message.DiscardUnknownFields()
        # nothing dropped as unknown, nothing written twice: the runtime's own encoding
        # of what it read is as long (fields in another order, maybe)
        assert message.ByteSize() == size
        out.append(message)
    assert pos == len(data)
    return out


def encode_decode(families: Iterable[MetricFamily], escaping: str = "underscores") -> list[Any]:
    return decode(protobuf.encode(list(families), escaping))


def one(families: Iterable[MetricFamily], escaping: str = "underscores") -> Any:
    """The single family that ``families`` encode to."""
    (decoded,) = encode_decode(families, escaping)
    return decoded


def labels_of(metric: Any) -> list[tuple[str, str]]:
    return [(lp.name, lp.value) for lp in metric.label]


def seconds_nanos(t: float) -> tuple[int, int]:
    """A Timestamp as the encoder must write it: floor, rounded nanos clamped."""
    seconds = math.floor(t)
    return seconds, max(0, min(999_999_999, round((t - seconds) * 1e9)))


def assert_timestamp(ts: Any, t: float) -> None:
    assert (ts.seconds, ts.nanos) == seconds_nanos(t)


def ls(**labels: str) -> LabelSet:
    return LabelSet(tuple(labels), tuple(labels.values()))


def family(kind: str, name: str, samples: Sequence[Sample], unit: str = "") -> MetricFamily:
    return MetricFamily(name, f"{name} help", kind, list(samples), unit)


def samples_named(families: list[MetricFamily], name: str) -> list[Sample]:
    (fam,) = [f for f in families if f.name == name]
    return fam.samples


# -- every type ------------------------------------------------------------------------------
def test_a_counter_is_named_total_with_value_exemplar_and_created(
    registry: CollectorRegistry,
) -> None:
    c = Counter("requests", "Requests served", ["method"], registry=registry)
    c.labels("GET").inc(3, exemplar={"trace_id": "abc123"})
    c.labels("POST").inc(0)
    fams = collect_sync(registry, True)
    samples = samples_named(fams, "requests")

    mf = one(fams)
    assert (mf.name, mf.help, mf.type) == ("requests_total", "Requests served", COUNTER)
    assert not mf.HasField("unit")
    get, post = mf.metric
    assert labels_of(get) == [("method", "GET")]
    assert labels_of(post) == [("method", "POST")]
    assert get.HasField("counter") and not get.HasField("gauge")
    assert get.counter.value == 3.0
    assert post.counter.HasField("value") and post.counter.value == 0.0  # 0 written, explicitly
    assert not post.counter.HasField("exemplar")
    ex = get.counter.exemplar
    sample_ex = samples[0].exemplar
    assert sample_ex is not None
    assert labels_of(ex) == [("trace_id", "abc123")]
    assert ex.value == 3.0
    assert_timestamp(ex.timestamp, sample_ex.timestamp)
    assert_timestamp(get.counter.created_timestamp, samples[1].value)
    assert_timestamp(post.counter.created_timestamp, samples[3].value)
    assert not get.HasField("timestamp_ms")


def test_a_counter_named_total_already_is_not_suffixed_twice_and_created_is_optional() -> None:
    fam = family(
        "counter", "jobs_total", [Sample("jobs_total", ls(queue="a"), 7.0)]
    )  # a custom collector's: no _created
    mf = one([fam])
    assert mf.name == "jobs_total"
    (metric,) = mf.metric
    assert metric.counter.value == 7.0
    assert not metric.counter.HasField("created_timestamp")


def test_a_gauge_writes_its_value_even_zero(registry: CollectorRegistry) -> None:
    g = Gauge("temperature", "Degrees", ["room"], registry=registry)
    g.labels("kitchen").set(21.5)
    g.labels("cellar").set(0)
    mf = one(collect_sync(registry, True))
    assert (mf.name, mf.type) == ("temperature", GAUGE)
    kitchen, cellar = mf.metric
    assert labels_of(kitchen) == [("room", "kitchen")]
    assert kitchen.gauge.value == 21.5
    assert cellar.gauge.HasField("value") and cellar.gauge.value == 0.0
    assert not cellar.HasField("counter") and not cellar.HasField("untyped")


def test_a_histogram_has_cumulative_buckets_without_inf_sum_count_and_created(
    registry: CollectorRegistry,
) -> None:
    h = Histogram("latency", "Latency", ["path"], buckets=(0.1, 0.5, 2.0), registry=registry)
    for v in (0.05, 0.2, 0.3, 1.0):
        h.labels("/a").observe(v)
    h.labels("/a").observe(0.07, exemplar={"trace_id": "t1"})
    h.labels("/b")  # no observation
    fams = collect_sync(registry, True)
    samples = samples_named(fams, "latency")

    mf = one(fams)
    assert (mf.name, mf.type) == ("latency", HISTOGRAM)
    a, b = mf.metric
    assert labels_of(a) == [("path", "/a")]
    hist = a.histogram
    assert hist.sample_count == 5 and not hist.HasField("sample_count_float")
    assert hist.sample_sum == pytest.approx(1.62)
    assert hist.sample_sum == [s.value for s in samples if s.name == "latency_sum"][0]
    # +Inf is left out, as client_golang does: Prometheus makes it from the count
    assert [(bk.upper_bound, bk.cumulative_count) for bk in hist.bucket] == [
        (0.1, 2),
        (0.5, 4),
        (2.0, 5),
    ]
    assert all(not bk.HasField("cumulative_count_float") for bk in hist.bucket)
    ex = hist.bucket[0].exemplar
    assert labels_of(ex) == [("trace_id", "t1")]
    assert ex.value == 0.07
    sample_ex = samples[0].exemplar
    assert sample_ex is not None
    assert_timestamp(ex.timestamp, sample_ex.timestamp)
    assert not hist.bucket[1].HasField("exemplar")
    created = [s.value for s in samples if s.name == "latency_created"]
    assert_timestamp(hist.created_timestamp, created[0])
    # a classic histogram: nothing a native one would have
    assert not hist.HasField("schema") and not hist.HasField("zero_threshold")
    assert not hist.positive_span and not hist.negative_span

    empty = b.histogram
    assert empty.HasField("sample_count") and empty.sample_count == 0
    assert empty.HasField("sample_sum") and empty.sample_sum == 0.0
    assert [bk.cumulative_count for bk in empty.bucket] == [0, 0, 0]
    assert all(bk.HasField("cumulative_count") for bk in empty.bucket)
    assert_timestamp(empty.created_timestamp, created[1])


def classic_series(hist: Any) -> list[tuple[str, float]]:
    """The ``le`` series Prometheus' protobufparse.go reads from a classic histogram."""
    out: list[tuple[str, float]] = []
    count = hist.sample_count_float or hist.sample_count
    for bk in hist.bucket:
        out.append((repr(bk.upper_bound), bk.cumulative_count_float or bk.cumulative_count))
        if math.isinf(bk.upper_bound):
            return out  # an explicit +Inf bucket ends the buckets
    out.append(("inf", count))  # else +Inf is made from the count
    return out


def test_an_inf_bucket_with_an_exemplar_is_written_and_prometheus_sees_one_inf(
    registry: CollectorRegistry,
) -> None:
    h = Histogram("size", "Size", buckets=(1.0,), registry=registry)
    h.observe(0.5)
    h.observe(10.0, exemplar={"id": "big"})
    hist = one(collect_sync(registry, True)).metric[0].histogram
    assert [(bk.upper_bound, bk.cumulative_count) for bk in hist.bucket] == [
        (1.0, 1),
        (math.inf, 2),
    ]
    assert labels_of(hist.bucket[1].exemplar) == [("id", "big")]
    assert hist.bucket[1].exemplar.value == 10.0
    assert hist.sample_count == 2
    assert classic_series(hist) == [("1.0", 1), ("inf", 2)]


def test_an_inf_bucket_other_than_the_count_is_kept_and_a_missing_count_comes_from_it() -> None:
    inf_differs = [
        Sample("h_bucket", ls(a="1"), 1.0, None, ("le", "1.0")),
        Sample("h_bucket", ls(a="1"), 3.0, None, ("le", "+Inf")),
        Sample("h_count", ls(a="1"), 4.0),
        Sample("h_sum", ls(a="1"), 9.0),
    ]
    no_count = [
        Sample("h_bucket", ls(a="2"), 1.0, None, ("le", "1.0")),
        Sample("h_bucket", ls(a="2"), 6.0, None, ("le", "+Inf")),
        Sample("h_sum", ls(a="2"), 9.0),
    ]
    first, second = one([family("histogram", "h", inf_differs + no_count)]).metric
    assert [(b.upper_bound, b.cumulative_count) for b in first.histogram.bucket] == [
        (1.0, 1),
        (math.inf, 3),
    ]
    assert first.histogram.sample_count == 4
    assert [(b.upper_bound, b.cumulative_count) for b in second.histogram.bucket] == [(1.0, 1)]
    assert second.histogram.sample_count == 6
    assert classic_series(second.histogram) == [("1.0", 1), ("inf", 6)]


def test_a_histogram_without_sum_says_nan_not_zero(registry: CollectorRegistry) -> None:
    # OpenMetrics leaves out the _sum of a histogram with a negative bound; Prometheus
    # would store an absent sample_sum as 0, so the encoder writes NaN
    h = Histogram("temp", "Temperature", buckets=(-10.0, 0.0, 10.0), registry=registry)
    h.observe(-20.0)
    h.observe(5.0)
    fams = collect_sync(registry, True)
    assert not [s for s in fams[0].samples if s.name in ("temp_sum", "temp_count")]
    hist = one(fams).metric[0].histogram
    assert hist.HasField("sample_sum") and math.isnan(hist.sample_sum)
    assert hist.sample_count == 2  # from the +Inf bucket
    assert [(b.upper_bound, b.cumulative_count) for b in hist.bucket] == [
        (-10.0, 1),
        (0.0, 1),
        (10.0, 2),
    ]


def test_counts_that_are_no_uint64_go_in_the_float_fields() -> None:
    samples = [
        Sample("w_bucket", EMPTY_LABELS, 0.5, None, ("le", "1.0")),
        Sample("w_bucket", EMPTY_LABELS, 2.0, None, ("le", "2.0")),
        Sample("w_bucket", EMPTY_LABELS, 2.5, None, ("le", "+Inf")),
        Sample("w_count", EMPTY_LABELS, 2.5),
        Sample("w_sum", EMPTY_LABELS, 3.0),
    ]
    hist = one([family("histogram", "w", samples)]).metric[0].histogram
    assert hist.sample_count_float == 2.5 and not hist.HasField("sample_count")
    first, second = hist.bucket
    assert first.cumulative_count_float == 0.5 and not first.HasField("cumulative_count")
    assert second.cumulative_count == 2 and not second.HasField("cumulative_count_float")


def test_a_summary_has_count_sum_and_created(registry: CollectorRegistry) -> None:
    s = Summary("payload", "Payload size", ["kind"], registry=registry)
    s.labels("json").observe(120.0)
    s.labels("json").observe(80.5)
    fams = collect_sync(registry, True)
    samples = samples_named(fams, "payload")
    mf = one(fams)
    assert (mf.name, mf.type) == ("payload", SUMMARY)
    (metric,) = mf.metric
    assert labels_of(metric) == [("kind", "json")]
    assert metric.summary.sample_count == 2
    assert metric.summary.sample_sum == 200.5
    assert not metric.summary.quantile
    assert_timestamp(metric.summary.created_timestamp, samples[2].value)


def test_a_custom_summarys_quantiles_as_extras_or_as_labels() -> None:
    samples = [
        Sample("rpc", ls(m="a"), 0.01, None, ("quantile", "0.5")),
        Sample("rpc", ls(m="a"), 0.09, None, ("quantile", "0.99")),
        Sample("rpc_count", ls(m="a"), 10.0),
        Sample("rpc_sum", ls(m="a"), 0.3),
        # prometheus_client style: the quantile among the labels
        Sample("rpc", ls(m="b", quantile="0.5"), 1.5),
        Sample("rpc_count", ls(m="b"), 2.0),
        Sample("rpc_sum", ls(m="b"), 3.0),
    ]
    a, b = one([family("summary", "rpc", samples)]).metric
    assert [(q.quantile, q.value) for q in a.summary.quantile] == [(0.5, 0.01), (0.99, 0.09)]
    assert (a.summary.sample_count, a.summary.sample_sum) == (10, 0.3)
    assert labels_of(b) == [("m", "b")]
    assert [(q.quantile, q.value) for q in b.summary.quantile] == [(0.5, 1.5)]
    assert not a.summary.HasField("created_timestamp")


def test_an_info_is_a_gauge_named_info_with_its_labels(registry: CollectorRegistry) -> None:
    Info("build", "Build information", registry=registry).info(
        {"version": "1.2.3", "commit": "abc"}
    )
    mf = one(collect_sync(registry, True))
    assert (mf.name, mf.help, mf.type) == ("build_info", "Build information", GAUGE)
    (metric,) = mf.metric
    assert dict(labels_of(metric)) == {"version": "1.2.3", "commit": "abc"}
    assert metric.gauge.value == 1.0


def test_a_stateset_is_a_gauge_with_a_metric_per_state(registry: CollectorRegistry) -> None:
    e = Enum("phase", "Phase", ["job"], states=["idle", "running"], registry=registry)
    e.labels("backup").state("running")
    mf = one(collect_sync(registry, True))
    assert (mf.name, mf.type) == ("phase", GAUGE)
    assert [(labels_of(m), m.gauge.value) for m in mf.metric] == [
        ([("job", "backup"), ("phase", "idle")], 0.0),
        ([("job", "backup"), ("phase", "running")], 1.0),
    ]


def test_an_unknown_family_is_untyped() -> None:
    mf = one([family("unknown", "mystery", [Sample("mystery", ls(x="1"), 42.0)])])
    assert (mf.name, mf.type) == ("mystery", UNTYPED)
    (metric,) = mf.metric
    assert metric.untyped.HasField("value") and metric.untyped.value == 42.0
    assert not metric.HasField("gauge")


def test_a_unit_and_help_with_newlines_and_unicode(registry: CollectorRegistry) -> None:
    help_text = 'Line one\nline "two" \\ with ünïcødé ✓ 🎉'
    Histogram(
        "request_duration", help_text, unit="seconds", buckets=(1.0,), registry=registry
    ).observe(0.5)
    mf = one(collect_sync(registry, True))
    assert mf.name == "request_duration_seconds"
    assert mf.unit == "seconds"
    assert mf.help == help_text
    custom = one(
        [family("gauge", "disk_bytes", [Sample("disk_bytes", EMPTY_LABELS, 1.0)], "bytes")]
    )
    assert custom.unit == "bytes"


def test_label_values_go_as_they_are(registry: CollectorRegistry) -> None:
    c = Counter("events", "Events", ["what", "empty"], registry=registry)
    c.labels(TRICKY, "").inc()
    (metric,) = one(collect_sync(registry, True)).metric
    assert labels_of(metric) == [("what", TRICKY), ("empty", "")]


def test_long_labels_and_many_buckets_have_multibyte_lengths() -> None:
    long_value = "x" * 20_000
    bounds = [str(float(i)) for i in range(1, 1200)]
    samples = [
        Sample("big_bucket", ls(v=long_value), float(i), None, ("le", le))
        for i, le in enumerate(bounds)
    ]
    samples.append(Sample("big_bucket", ls(v=long_value), 5000.0, None, ("le", "+Inf")))
    samples.append(Sample("big_count", ls(v=long_value), 5000.0))
    samples.append(Sample("big_sum", ls(v=long_value), 1e6))
    gauge_samples = [Sample("wide", ls(v="y" * 300), 1.0)]
    big, wide = encode_decode(
        [family("histogram", "big", samples), family("gauge", "wide", gauge_samples)]
    )
    (metric,) = big.metric
    assert labels_of(metric) == [("v", long_value)]
    assert len(metric.histogram.bucket) == len(bounds)
    assert metric.histogram.bucket[-1].cumulative_count == len(bounds) - 1
    assert metric.histogram.bucket[-1].upper_bound == 1199.0
    assert labels_of(wide.metric[0]) == [("v", "y" * 300)]


def test_a_family_without_series_is_left_out_and_one_without_labels_is_kept(
    registry: CollectorRegistry,
) -> None:
    Counter("labelled", "Has labels, no series", ["a"], registry=registry)
    Gauge("plain", "No labels", registry=registry).set(5)
    (mf,) = encode_decode(collect_sync(registry, True))
    assert mf.name == "plain"
    (metric,) = mf.metric
    assert not metric.label
    assert metric.gauge.value == 5.0
    assert protobuf.encode([]) == b""
    assert protobuf.encode([family("gauge", "none", [])]) == b""


def test_nan_and_infinities_are_doubles() -> None:
    samples = [
        Sample("odd", ls(v="nan"), math.nan),
        Sample("odd", ls(v="+inf"), math.inf),
        Sample("odd", ls(v="-inf"), -math.inf),
        Sample("odd", ls(v="-0"), -0.0),
    ]
    nan, pos, neg, zero = one([family("gauge", "odd", samples)]).metric
    assert math.isnan(nan.gauge.value)
    assert pos.gauge.value == math.inf
    assert neg.gauge.value == -math.inf
    assert zero.gauge.value == 0.0 and math.copysign(1.0, zero.gauge.value) == -1.0
    counter = [
        Sample("c_total", EMPTY_LABELS, math.inf),
        Sample("c_created", EMPTY_LABELS, math.nan),
    ]
    (metric,) = one([family("counter", "c", counter)]).metric
    assert metric.counter.value == math.inf
    assert not metric.counter.HasField("created_timestamp")  # no time to tell


@pytest.mark.parametrize(
    ("t", "seconds", "nanos"),
    [
        (1700000000.25, 1700000000, 250_000_000),
        (1.5, 1, 500_000_000),
        (3.0, 3, 0),
        (0.0, 0, 0),
        (1e-9, 0, 1),
        (0.001, 0, 1_000_000),
        (0.999_999_999_9, 0, 999_999_999),  # rounds to 1e9: clamped
        (-1.25, -2, 750_000_000),
        (-1e-12, -1, 999_999_999),
    ],
)
def test_timestamps_are_floor_seconds_and_rounded_nanos(t: float, seconds: int, nanos: int) -> None:
    samples = [Sample("c_total", EMPTY_LABELS, 1.0), Sample("c_created", EMPTY_LABELS, t)]
    (metric,) = one([family("counter", "c", samples)]).metric
    ts = metric.counter.created_timestamp
    assert metric.counter.HasField("created_timestamp")
    assert (ts.seconds, ts.nanos) == (seconds, nanos) == seconds_nanos(t)


# -- names -----------------------------------------------------------------------------------
def dotted_families() -> list[MetricFamily]:
    labels = ls(**{"my.label": "v"})
    exemplar = Exemplar(ls(**{"trace.id": "t"}), 1.0, 1700000000.5)
    return [
        family(
            "counter",
            "my.metric",
            [
                Sample("my.metric_total", labels, 1.0, exemplar),
                Sample("my.metric_created", labels, 5.0),
            ],
        ),
        family("stateset", "my.state", [Sample("my.state", labels, 1.0, None, ("my.state", "on"))]),
        family(
            "histogram",
            "my.hist",
            [
                Sample("my.hist_bucket", labels, 1.0, exemplar, ("le", "1.0")),
                Sample("my.hist_bucket", labels, 1.0, None, ("le", "+Inf")),
                Sample("my.hist_count", labels, 1.0),
                Sample("my.hist_sum", labels, 0.5),
            ],
        ),
    ]


@pytest.mark.parametrize("escaping", ["underscores", "dots", "values", "allow-utf-8"])
def test_names_are_escaped_as_asked_and_raw_under_allow_utf8(escaping: str) -> None:
    def metric_name(name: str) -> str:
        return name if escaping == "allow-utf-8" else escape_metric_name(name, escaping)

    def label_name(name: str) -> str:
        return name if escaping == "allow-utf-8" else escape_label_name(name, escaping)

    counter, stateset, hist = encode_decode(dotted_families(), escaping)
    assert counter.name == metric_name("my.metric_total")
    (metric,) = counter.metric
    assert labels_of(metric) == [(label_name("my.label"), "v")]
    assert labels_of(metric.counter.exemplar) == [(label_name("trace.id"), "t")]
    assert stateset.name == metric_name("my.state")
    assert labels_of(stateset.metric[0]) == [
        (label_name("my.label"), "v"),
        (label_name("my.state"), "on"),
    ]
    assert hist.name == metric_name("my.hist")
    assert labels_of(hist.metric[0].histogram.bucket[0].exemplar) == [(label_name("trace.id"), "t")]


def test_underscores_and_allow_utf8_spelled_out() -> None:
    counter, *_ = encode_decode(dotted_families(), "underscores")
    assert counter.name == "my_metric_total"
    assert labels_of(counter.metric[0]) == [("my_label", "v")]
    assert labels_of(counter.metric[0].counter.exemplar) == [("trace_id", "t")]
    counter, *_ = encode_decode(dotted_families(), "allow-utf-8")
    assert counter.name == "my.metric_total"  # raw: protobuf strings need no quoting
    assert labels_of(counter.metric[0]) == [("my.label", "v")]


def test_an_unknown_escaping_is_refused() -> None:
    with pytest.raises(ValueError, match="escaping"):
        protobuf.encode([family("gauge", "g", [Sample("g", EMPTY_LABELS, 1.0)])], "nope")


# -- custom collectors' orders ---------------------------------------------------------------
def test_a_series_split_over_the_family_is_one_metric_in_first_seen_order() -> None:
    counter = [
        Sample("c_total", ls(k="b"), 2.0),
        Sample("c_total", ls(k="a"), 1.0),
        Sample("c_created", ls(k="a"), 10.0),  # new LabelSet objects, equal labels
        Sample("c_created", ls(k="b"), 20.0),
    ]
    b, a = one([family("counter", "c", counter)]).metric
    assert (labels_of(b), b.counter.value, b.counter.created_timestamp.seconds) == (
        [("k", "b")],
        2.0,
        20,
    )
    assert (labels_of(a), a.counter.value, a.counter.created_timestamp.seconds) == (
        [("k", "a")],
        1.0,
        10,
    )

    # prometheus_client style: `le` among the labels, and the series interleaved
    hist = [
        Sample("h_bucket", ls(k="x", le="1.0"), 1.0),
        Sample("h_bucket", ls(k="y", le="1.0"), 0.0),
        Sample("h_bucket", ls(k="x", le="+Inf"), 2.0),
        Sample("h_bucket", ls(k="y", le="+Inf"), 3.0),
        Sample("h_count", ls(k="x"), 2.0),
        Sample("h_sum", ls(k="x"), 4.0),
        Sample("h_count", ls(k="y"), 3.0),
        Sample("h_sum", ls(k="y"), 9.0),
    ]
    x, y = one([family("histogram", "h", hist)]).metric
    assert labels_of(x) == [("k", "x")] and labels_of(y) == [("k", "y")]
    assert [(bk.upper_bound, bk.cumulative_count) for bk in x.histogram.bucket] == [(1.0, 1)]
    assert (x.histogram.sample_count, x.histogram.sample_sum) == (2, 4.0)
    assert [(bk.upper_bound, bk.cumulative_count) for bk in y.histogram.bucket] == [(1.0, 0)]
    assert (y.histogram.sample_count, y.histogram.sample_sum) == (3, 9.0)


def test_bounds_and_quantiles_that_are_no_numbers_are_refused() -> None:
    no_le = Sample("h_bucket", ls(k="x"), 1.0)  # a bucket with no bound at all: skipped
    bad = Sample("h_bucket", EMPTY_LABELS, 1.0, None, ("le", "high"))
    assert one([family("histogram", "h", [no_le, Sample("h_count", ls(k="x"), 1.0)])])
    with pytest.raises(ValueError, match="histogram bucket bound 'high' is not a number"):
        protobuf.encode([family("histogram", "h", [bad])])
    quantile = Sample("s", EMPTY_LABELS, 1.0, None, ("quantile", "median"))
    with pytest.raises(ValueError, match="summary quantile 'median' is not a number"):
        protobuf.encode([family("summary", "s", [quantile])])


def test_samples_of_a_gauge_named_otherwise_are_a_family_of_their_own() -> None:
    samples = [Sample("g", EMPTY_LABELS, 1.0), Sample("g_extra", EMPTY_LABELS, 2.0)]
    g, extra = encode_decode([family("gauge", "g", samples)])
    assert (g.name, [m.gauge.value for m in g.metric]) == ("g", [1.0])
    assert (extra.name, extra.type, [m.gauge.value for m in extra.metric]) == (
        "g_extra",
        GAUGE,
        [2.0],
    )


# -- the chunked pieces ----------------------------------------------------------------------
def test_a_family_of_many_chunks_is_one_message_with_every_series_in_order(
    registry: CollectorRegistry,
) -> None:
    """A registered metric is encoded a chunk of series at a time, then framed once."""
    from apytheus._expose.chunks import CHUNK_SAMPLES
    from apytheus.exposition import PROTOBUF_CONTENT_TYPE, render

    c = Counter("chunked", "Chunked", ["i"], registry=registry)
    n = CHUNK_SAMPLES * 3 + 7  # a counter series is two samples: six chunks and a bit
    for i in range(n):
        c.labels(str(i)).inc(i)
    Counter("empty", "No series", ["i"], registry=registry)  # left out: no message
    (family,) = decode(render(registry, PROTOBUF_CONTENT_TYPE)[0])
    assert family.name == "chunked_total"
    assert [(m.label[0].value, m.counter.value) for m in family.metric] == [
        (str(i), float(i)) for i in range(n)
    ]


def test_every_registry_type_together_decodes(registry: CollectorRegistry) -> None:
    Counter("a", "A", registry=registry).inc()
    Gauge("b", "B", registry=registry).set(2)
    Histogram("c", "C", registry=registry).observe(0.3)
    Summary("d", "D", registry=registry).observe(4)
    Info("e", "E", registry=registry).info({"k": "v"})
    Enum("f", "F", states=["x", "y"], registry=registry).state("y")
    decoded = encode_decode(collect_sync(registry, True))
    assert [(mf.name, mf.type) for mf in decoded] == [
        ("a_total", COUNTER),
        ("b", GAUGE),
        ("c", HISTOGRAM),
        ("d", SUMMARY),
        ("e_info", GAUGE),
        ("f", GAUGE),
    ]


# -- registered metrics: straight from their series ------------------------------------------
def fast_path(registry: CollectorRegistry, escaping: str = "underscores") -> bytes:
    """What a scrape sends: registered metrics encoded from their series, in chunks."""
    parts = collect_parts(registry, True)
    return b"".join(chunk for chunk, _ in protobuf_chunks(parts, escaping))


def one_of(body: bytes) -> Any:
    (decoded,) = decode(body)
    return decoded


def sample_path(registry: CollectorRegistry, escaping: str = "underscores") -> bytes:
    """The same metrics as samples (every ``_sum`` kept, as protobuf wants), then encoded."""
    families = [
        p if isinstance(p, MetricFamily) else build_family(*p, True, every_sum=True)
        for p in collect_parts(registry, True)
    ]
    return protobuf.encode(families, escaping)


def series_of(registry: CollectorRegistry, name: str) -> list[Any]:
    (found,) = [
        p[2]
        for p in collect_parts(registry, True)
        if not isinstance(p, MetricFamily) and p[1] == name
    ]
    return list(found)


def every_kind(registry: CollectorRegistry) -> None:
    """A registry with each kind, many series, exemplars, long and non-ASCII labels."""
    c = Counter("requests", "Requests", ["method", "my.id"], registry=registry)
    for i in range(1100):  # several chunks; more ids than an Encoder keeps
        c.labels(("GET", "POST", TRICKY, "x" * 200)[i % 4], str(i)).inc(i % 3 or 0.5)
    c.labels("GET", "ex").inc(2, exemplar={"trace.id": "abc"})
    Counter("jobs_total", "Jobs", registry=registry).inc(1e20)
    g = Gauge("temp", "Temperature", ["room"], unit="celsius", registry=registry)
    for i, v in enumerate((1.5, math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300)):
        g.labels(f"r{i}").set(v)
    g.labels("y" * 300).set(3)
    Gauge("long", "A long label name", ["n" * 130], registry=registry).labels("v").set(1)
    h = Histogram("latency", "Latency", ["path"], buckets=(0.1, 1.0, 10.0), registry=registry)
    for i in range(200):
        h.labels(f"/p{i % 40}").observe(i / 10)
    h.labels("/ex").observe(0.05, exemplar={"id": "low"})
    h.labels("/ex").observe(50, exemplar={"id": "high"})  # on +Inf: written
    Histogram("cold", "Below zero", buckets=(-5.0, 0.0), registry=registry).observe(-7)
    Histogram("wide", "Wide", buckets=[float(i) for i in range(1, 150)], registry=registry)
    s = Summary("payload", "Payload", ["kind"], registry=registry)
    for i in range(30):
        s.labels(str(i % 4)).observe(i * 1.5)
    Info("build", "Build", registry=registry).info({"version": "1.2", "commit": "abc"})
    Info("host", "Host", ["dc"], registry=registry).labels("eu").info({"os": "linux"})
    e = Enum("phase", "Phase", ["job"], states=["idle", "running", "done"], registry=registry)
    for i in range(50):
        e.labels(f"j{i}").state(("idle", "running", "done")[i % 3])
    Counter("unused", "No series yet", ["a"], registry=registry)
    registry.register(Collected())


class Collected:
    """A custom collector: its families come built."""

    def collect(self) -> Iterator[Any]:
        yield GaugeMetricFamily("room", "Room temperature", value=21)


@pytest.mark.parametrize("escaping", ["underscores", "dots", "values", "allow-utf-8"])
def test_series_encode_as_their_samples_would(registry: CollectorRegistry, escaping: str) -> None:
    every_kind(registry)
    body = fast_path(registry, escaping)
    assert body == sample_path(registry, escaping)
    decoded = decode(body)
    names = ["requests_total", "jobs_total", "temp_celsius"]
    assert [mf.name for mf in decoded][:3] == [escape_metric_name(n, escaping) for n in names]
    hist = [mf for mf in decoded if mf.name == "latency"][0]
    ex = [m for m in hist.metric if labels_of(m) == [("path", "/ex")]][0].histogram
    assert [b.upper_bound for b in ex.bucket] == [0.1, 1.0, 10.0, math.inf]
    assert labels_of(ex.bucket[-1].exemplar) == [("id", "high")]


@pytest.mark.parametrize(
    "created",
    [
        1700000000.25,  # nanos of five bytes
        1700000000.001,  # four
        1700000000.000_1,  # three: under 2**21
        1700000000.000_000_001,  # one
        1700000000.0,  # none
        1700000000.999_999_999_9,  # rounds to 1e9: clamped
        1.5,  # seconds of one byte
        -1.25,  # before 1970
        1e12,  # seconds of six bytes
        math.nan,  # no created timestamp
        math.inf,
    ],
)
def test_a_counter_created_at_any_time(registry: CollectorRegistry, created: float) -> None:
    c = Counter("c", "C", ["k"], registry=registry)
    for i in range(3):
        c.labels(str(i)).inc(i)
    for s in series_of(registry, "c"):
        s.created = created
    series_of(registry, "c")[1].created = 1700000000.5  # one apart, between two alike
    body = fast_path(registry)
    assert body == sample_path(registry)
    first, second, third = one_of(body).metric
    assert second.counter.created_timestamp.seconds == 1700000000
    for metric in (first, third):
        if math.isfinite(created):
            assert_timestamp(metric.counter.created_timestamp, created)
        else:
            assert not metric.counter.HasField("created_timestamp")


def test_series_created_together_share_their_timestamp_parts(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["k"], registry=registry)
    for i in range(400):
        c.labels(str(i)).inc()
    base = 1700000000.0
    for i, s in enumerate(series_of(registry, "c")):  # 2 ms steps, across a second too
        s.created = base + 0.9 + i * 0.0007
    body = fast_path(registry)
    assert body == sample_path(registry)
    for i, metric in enumerate(one_of(body).metric):
        assert_timestamp(metric.counter.created_timestamp, base + 0.9 + i * 0.0007)


def test_a_failing_gauge_function_is_logged_and_left_out(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    g = Gauge("g", "G", ["k"], registry=registry)
    g.labels("good").set(1)
    g.labels("bad").set_function(lambda: 1 / 0)
    body = fast_path(registry)
    assert body == sample_path(registry)
    assert [labels_of(m) for m in one_of(body).metric] == [[("k", "good")]]
    assert 'the function of g{k="bad"} failed' in caplog.text


def test_a_family_comes_in_steps_of_a_few_hundred_samples(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["k"], registry=registry)
    for i in range(1000):
        c.labels(str(i)).inc()
    steps = list(protobuf_chunks(collect_parts(registry, True), "underscores"))
    *partial, (last, _) = steps
    assert len(partial) > 5
    assert all(chunk == b"" and 0 < n <= 300 for chunk, n in partial)
    assert sum(n for _, n in partial) == 2000  # a counter's value and created time
    assert len(one_of(last).metric) == 1000
