"""STORE: the newest exemplar of each series (each bucket) through a shared store.

Best effort, never exactly once: a batch carries, per metric, the exemplars that
changed since the last batch (`to_send`); the store keeps one per field, and the
newest (by its timestamp) wins whichever worker sent it; a read puts them back on
the series it returns (`Attached`). An exemplar that cannot travel (too long, no
finite timestamp) is left out, and one read back that does not parse is ignored:
neither ever touches the counts.

A field is the values hash's field: a counter's series field, or a histogram's
series field, a tab and the bucket's ``le`` (``+Inf`` too: a native histogram keeps
its exemplars on its classic buckets, as protobuf carries them). A value is
``"<timestamp> <value> <labels as JSON pairs>"``: the store compares the timestamps.
"""

from __future__ import annotations

import json
import math
import weakref
from typing import Any

from .._labels import LabelSet, check_label_names
from .._samples import Exemplar, floatstr
from ._protocol import MetricSpec, Series
from ._redis_layout import SEP, bucket_parts
from ._series import HistogramSeries, ScalarSeries

MAX_BYTES = 1024
"""An encoded exemplar longer than this stays home (OpenMetrics allows 128 characters
of labels; a UTF-8 character is at most 4 bytes, and the numbers fit in the rest)."""

KINDS = ("counter", "histogram")  # the types OpenMetrics gives exemplars


def encode(exemplar: Exemplar) -> str | None:
    """An exemplar as the store keeps it, or None if it cannot travel."""
    try:
        at = float(exemplar.timestamp)
        pairs = [[str(k), str(v)] for k, v in exemplar.labels.pairs]
        text = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
        out = f"{at!r} {floatstr(float(exemplar.value))} {text}"
    except (TypeError, ValueError, AttributeError):
        return None
    if not math.isfinite(at) or len(out.encode()) > MAX_BYTES:
        return None
    return out


def decode(raw: bytes) -> Exemplar | None:
    """An exemplar read back from the store, or None if it is not one."""
    try:
        at, value, text = raw.decode().split(" ", 2)
        pairs = json.loads(text)
        if not isinstance(pairs, list):
            return None
        labels = tuple((k, v) for k, v in pairs if isinstance(k, str) and isinstance(v, str))
        if len(labels) != len(pairs) or sum(len(k) + len(v) for k, v in labels) > 128:
            return None
        check_label_names([k for k, _ in labels])
        return Exemplar(LabelSet.from_pairs(labels), float(value), float(at))
    except (ValueError, TypeError, UnicodeDecodeError):  # LabelValidationException too
        return None


def to_send(series: Series, field: str, shown: Any, every: bool) -> tuple[list[Any], Any]:
    """The (field, encoded) pairs of the exemplars written since ``shown``, and the new
    ``shown`` (what the batch sends; ``every``: all of them, the store lost them)."""
    out: list[tuple[str, str]] = []
    if isinstance(series, ScalarSeries):
        found: Any = series.exemplar
        if found is not None and (every or found is not shown):
            encoded = encode(found)
            if encoded is not None:
                out.append((field, encoded))
        return out, found
    if not isinstance(series, HistogramSeries):
        return out, None
    found = tuple(series.exemplars)  # one atomic copy: records may replace items meanwhile
    if found == shown and not every:  # the usual case: the same objects (or none)
        return out, found
    before = (None,) * len(found) if every or shown is None else shown
    parts = bucket_parts(series.bounds)
    for i, exemplar in enumerate(found):
        if exemplar is not None and exemplar is not before[i]:
            encoded = encode(exemplar)
            if encoded is not None:
                out.append((field + SEP + parts[i], encoded))
    return out, found


class Attached:
    """What the reads of one store put on series: parsed values, and where they went.

    A read parses only the values it did not see last time, and takes back the
    exemplars it put on series that no longer have one in the store.
    """

    def __init__(self) -> None:
        self._parsed: weakref.WeakKeyDictionary[MetricSpec, dict[bytes, Exemplar | None]] = (
            weakref.WeakKeyDictionary()
        )
        self._placed: weakref.WeakKeyDictionary[MetricSpec, list[tuple[Series, int]]] = (
            weakref.WeakKeyDictionary()
        )

    def attach(
        self, spec: MetricSpec, known: dict[bytes, Series | None], stored: dict[bytes, bytes]
    ) -> None:
        """Put the stored exemplars of ``spec`` on its series (``known``: by field)."""
        before = self._parsed.get(spec, {})
        parsed: dict[bytes, Exemplar | None] = {}
        placed: list[tuple[Series, int]] = []
        index = {p.encode(): i for i, p in enumerate(bucket_parts(spec.bounds)[:-1])}
        sep = SEP.encode()
        for f, raw in stored.items():
            exemplar = before.get(raw) if raw in before else decode(raw)
            parsed[raw] = exemplar
            if exemplar is None:
                continue
            if spec.kind == "counter":
                series = known.get(f)
                if isinstance(series, ScalarSeries):
                    series.exemplar = exemplar
                    placed.append((series, -1))
                continue
            field, _, part = f.rpartition(sep)
            i = index.get(part)
            series = known.get(field)
            if i is not None and isinstance(series, HistogramSeries):
                series.exemplars[i] = exemplar
                placed.append((series, i))
        kept = {(id(s), i) for s, i in placed}
        for series, i in self._placed.get(spec, ()):
            if (id(series), i) not in kept:  # gone from the store (its series was removed)
                if isinstance(series, ScalarSeries):
                    series.exemplar = None
                elif isinstance(series, HistogramSeries):
                    series.exemplars[i] = None
        self._parsed[spec] = parsed
        self._placed[spec] = placed
