"""The Prometheus protobuf format: delimited ``io.prometheus.client.MetricFamily`` messages.

Each family is one message (prometheus/client_model ``metrics.proto``) after
its length as a varint: the framing client_golang writes and Prometheus'
``protobufparse.go`` reads. The messages are written by hand (no protobuf
runtime needed); field numbers and wire types are the schema's.

How the families map (as client_golang sends them, as Prometheus reads them):

* counter: a family named ``<name>_total`` (Prometheus takes the family name as
  the series name; a name ending in ``_total`` already keeps it), the value,
  the exemplar, and the ``_created`` sample as the created timestamp;
* gauge: GAUGE; info: a GAUGE named ``<name>_info``; stateset: a GAUGE with one
  ``Metric`` per series and state, the state label added; unknown: UNTYPED;
* histogram: count, sum, the cumulative buckets but ``+Inf`` (Prometheus adds
  that one from the count, as client_golang leaves it out) unless it carries an
  exemplar or a count other than ``_count``. A missing ``_count`` is the
  ``+Inf`` bucket's; a missing ``_sum`` is written NaN (Prometheus would store
  an absent one as a wrong 0). Counts that are no uint64 go in the double fields;
* summary: count, sum, quantiles and created timestamp.

Families without series are left out (as client_golang does; Prometheus skips
them). Metric and label names are escaped as ``escaping`` says, except under
``allow-utf-8``: then they go as they are (protobuf strings need no quoting).

This module encodes `MetricFamily` objects (a custom collector's), from their
samples; a registered metric's series are encoded directly by `_protoseries`,
into the same messages (`_protometric`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from ..._labels import LabelSet
from ..._names import UNDERSCORES
from ..._samples import Exemplar, MetricFamily
from . import _protometric as pm
from ._protowire import INF_BOUND, bound, varint

CONTENT_TYPE: Final = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)

Key = tuple[tuple[str, ...], tuple[str, ...]]  # a series' label names and values
Row = list[Any]  # a series: its `Key` first, then what its samples said
Texts = list[str | None]  # each row's label text (None: irregular, see `_series`)


def exposed_name(fam: MetricFamily) -> str:
    """The protobuf family name (before escaping): the name Prometheus stores series under.

    A counter's is the name of its value sample, as the text formats show it
    (``<name>_total`` for apytheus' own; a custom collector may have named it
    otherwise), so a series keeps its name whichever format Prometheus asks for.
    """
    if fam.type == "counter":
        created = fam.name + "_created"
        for s in fam.samples:
            if s.name != created:
                return s.name
    return pm.exposed_name(fam.type, fam.name)


def frame(header: bytes, body: Sequence[bytes]) -> bytes:
    """A delimited MetricFamily message: length, ``header``, the ``body`` metric fields.

    No metric at all: nothing (a family without series is left out).
    """
    total = sum(map(len, body))
    if not total:
        return b""
    return b"".join((varint(len(header) + total), header, *body))


def encode(families: Iterable[MetricFamily], escaping: str = UNDERSCORES) -> bytes:
    """Families as delimited ``io.prometheus.client.MetricFamily`` messages.

    ``escaping`` (``underscores``, ``dots``, ``values`` or ``allow-utf-8``) says
    how metric and label names outside the classic set are written. A gauge-like
    family's samples named otherwise than it (a custom collector's) go in a
    family of their own, with its help and type.
    """
    enc = pm.Encoder(escaping)
    return b"".join(encode_family(enc, fam) for fam in families)


def encode_family(enc: pm.Encoder, fam: MetricFamily) -> bytes:
    """One family's delimited message(s), with the call's `_protometric.Encoder`."""
    others: dict[str, list[bytes]] = {}
    out = [frame(_header(enc, fam, exposed_name(fam)), metrics(enc, fam, others))]
    out.extend(frame(_header(enc, fam, name), found) for name, found in others.items())
    return b"".join(out)


def _header(enc: pm.Encoder, fam: MetricFamily, name: str) -> bytes:
    return enc.header(name, fam.documentation, fam.type, fam.unit)


def metrics(
    enc: pm.Encoder, fam: MetricFamily, others: dict[str, list[bytes]] | None
) -> list[bytes]:
    """The family's MetricFamily.metric fields.

    A gauge-like sample whose name is not the family's goes, with ``others``,
    into ``others`` by its name (a family of its own), else into the family.
    """
    kind = fam.type
    if kind == "counter":
        rows = _series(fam, _counter_rows)
        return [
            pm.counter(enc, enc.labels(*r[0]), r[1], r[2], r[3]) for r in rows if r[1] is not None
        ]
    if kind == "histogram" or kind == "gaugehistogram":
        return [_histogram(enc, row) for row in _series(fam, _histogram_rows)]
    if kind == "summary":
        return [_summary(enc, row) for row in _series(fam, _summary_rows)]
    return _simple(enc, fam, others)


def _series(fam: MetricFamily, rows: Callable[[MetricFamily, Texts], Iterator[Row]]) -> list[Row]:
    """A family's rows, one per series, merged by labels if they come apart.

    ``rows(fam, texts)`` yields a row each time the labels change, adding
    each series' label text to ``texts`` (a custom collector's ``le`` or
    ``quantile`` among the labels adds a None). A series seen twice, or such a
    label, makes the merging pass: rows of equal labels become one, in
    first-seen order, a list field extended and a field set by the last one.
    """
    texts: Texts = []
    found = list(rows(fam, texts))
    if None not in texts and len(set(texts)) == len(texts):
        return found
    merged: dict[Key, Row] = {}
    for row in found:
        into = merged.setdefault(row[0], row)
        if into is row:
            continue
        for i in range(1, len(row)):
            if isinstance(into[i], list):
                into[i] += row[i]
            elif row[i] is not None:
                into[i] = row[i]
    return list(merged.values())


def _counter_rows(fam: MetricFamily, texts: Texts) -> Iterator[Row]:
    """Each series' [labels (`Key`), value, exemplar, created], as its samples come."""
    name = exposed_name(fam)
    created_name = fam.name + "_created"
    row: Row = [None]
    current: object = None
    for sname, labels, v, ex, _ in fam.samples:
        if labels is not current:
            current = labels
            key = (labels.names, labels.values)
            if key != row[0]:
                if row[0] is not None:
                    yield row
                row = [key, None, None, None]
                texts.append(labels.text)
        if sname == created_name or (sname != name and sname.endswith("_created")):
            row[3] = v
        else:
            row[1] = v
            if ex is not None:
                row[2] = ex
    if row[0] is not None:
        yield row


def _split(labels: LabelSet, name: str) -> tuple[Key, tuple[str, str] | None]:
    """Labels without the label ``name``, and that label (a custom collector's ``le``)."""
    names, values = labels.names, labels.values
    if name in names:
        i = names.index(name)
        key = (names[:i] + names[i + 1 :], values[:i] + values[i + 1 :])
        return key, (name, values[i])
    return (names, values), None


def _parted_rows(
    fam: MetricFamily, texts: Texts, label: str, names: tuple[str, str, str, str]
) -> Iterator[Row]:
    """Each series' [labels (`Key`), [(``label`` value, value, exemplar)], count, sum, created].

    ``names``: the samples' names for the parts (buckets or quantiles), count,
    sum and created time. A part's ``label`` is its extra label, or (a custom
    collector's) one of its labels.
    """
    part_name, count_name, sum_name, created_name = names
    row: Row = [None]
    current: object = None
    for sname, labels, value, exemplar, extra in fam.samples:
        if extra is None and sname == part_name:  # the label among the labels
            key, extra = _split(labels, label)
            if extra is None:
                continue
            texts.append(None)
            current = None
            if key != row[0]:
                if row[0] is not None:
                    yield row
                row = [key, [], None, None, None]
        elif labels is not current:
            current = labels
            key = (labels.names, labels.values)
            if key != row[0]:
                if row[0] is not None:
                    yield row
                row = [key, [], None, None, None]
                texts.append(labels.text)
        if extra is not None:
            if sname == part_name and extra[0] == label:
                row[1].append((extra[1], value, exemplar))
        elif sname == count_name:
            row[2] = value
        elif sname == sum_name:
            row[3] = value
        elif sname == created_name:
            row[4] = value
    if row[0] is not None:
        yield row


def _histogram_rows(fam: MetricFamily, texts: Texts) -> Iterator[Row]:
    name = fam.name
    gauge = fam.type == "gaugehistogram"  # a custom collector's
    counts = (name + "_gcount", name + "_gsum") if gauge else (name + "_count", name + "_sum")
    return _parted_rows(fam, texts, "le", (name + "_bucket", *counts, name + "_created"))


def _summary_rows(fam: MetricFamily, texts: Texts) -> Iterator[Row]:
    name = fam.name
    names = (name, name + "_count", name + "_sum", name + "_created")
    return _parted_rows(fam, texts, "quantile", names)


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None


def _histogram(enc: pm.Encoder, row: Row) -> bytes:
    key, parts, count, total, created = row
    buckets: list[bytes] = []
    inf: tuple[float, Exemplar | None] | None = None
    for le, value, exemplar in parts:
        field = bound(_number(le, "histogram bucket bound"))
        if field is INF_BOUND:
            inf = (value, exemplar)
        else:
            buckets.append(pm.bucket(enc, value, field, exemplar))
    return pm.histogram(enc, enc.labels(*key), buckets, inf, count, total, created)


def _summary(enc: pm.Encoder, row: Row) -> bytes:
    key, parts, count, total, created = row
    quantiles = [(_number(q, "summary quantile"), value) for q, value, _ in parts]
    return pm.summary(enc, enc.labels(*key), quantiles, count, total, created)


def _simple(
    enc: pm.Encoder, fam: MetricFamily, others: dict[str, list[bytes]] | None
) -> list[bytes]:
    """Gauge, info, stateset, unknown: a Metric per sample."""
    name = exposed_name(fam)
    key = pm.UNTYPED_VALUE if pm.TYPES.get(fam.type, pm.UNTYPED) == pm.UNTYPED else pm.GAUGE
    out: list[bytes] = []
    current: object = None
    labels = b""
    for sname, label_set, value, _, extra in fam.samples:
        if label_set is not current:
            current = label_set
            labels = enc.labels(label_set.names, label_set.values)
        with_extra = labels if extra is None else labels + enc.labels((extra[0],), (extra[1],))
        metric = pm.gauge(with_extra, value, key)
        if sname == name or others is None:
            out.append(metric)
        else:
            others.setdefault(sname, []).append(metric)
    return out
