"""STORE: turn one metric's Redis hashes into series, merged over workers (pure, no I/O)."""

from __future__ import annotations

import json
from typing import Any

from .._labels import LabelSet
from ._protocol import MetricSpec, Series
from ._redis_layout import SEP, bucket_parts
from ._series import BASE, HistogramSeries, InfoSeries, put, read_series
from ._threads import BREATHE, Breather

SEP_BYTES = SEP.encode()
LIVE_MODES = frozenset({"livesum", "livemax", "livemin", "livemostrecent", "liveall"})


class Merge:
    """Turns one metric's hashes into series, reusing those the last read made.

    ``known`` maps a series' key (its hash field, as bytes) to the series the
    last read made for it, or None where the field's labels do not fit this
    metric. A read parses a field's label JSON once, the first time it sees it,
    and then only updates that series' value: at 100k series a scrape neither
    decodes 100k JSON arrays nor makes 100k new objects for the garbage
    collector to walk. ``fresh`` gets what this read saw (so the cache never
    outgrows Redis).
    """

    def __init__(self, spec: MetricSpec, known: dict[bytes, Series | None]) -> None:
        self.spec = spec
        self.known = known
        self.fresh: dict[bytes, Series | None] = {}

    def _parse(self, field: bytes) -> LabelSet | None:
        """The labels a field names, or None if they do not fit this metric's label names.

        They do not fit when another metric of the same name but other labels
        (another registry, an older deployment) writes under the same key prefix.
        """
        try:
            values = json.loads(field)
        except ValueError:
            return None
        names = self.spec.label_names
        if not isinstance(values, list) or len(values) != len(names):
            return None
        return LabelSet(names, tuple(map(str, values)))

    def _scalar(self, key: bytes, field: bytes, extra: tuple[str, str] | None = None) -> Any:
        """The series for ``key`` (made once from ``field``'s labels), or None if unfit."""
        series = self.known.get(key)
        if series is None and key not in self.known:
            labels = self._parse(field)
            if labels is not None:
                series = read_series(labels if extra is None else labels.plus(extra))
        self.fresh[key] = series
        return series

    def merge(
        self, values: dict[bytes, bytes], extra: dict[bytes, bytes] | None, live: set[str]
    ) -> list[Series]:
        """Every series of the metric, from its values hash and its created or times hash.

        ``extra`` is None when creation times were not read (the text format): the
        series then keep the ones an earlier read found.
        """
        kind = self.spec.kind
        if kind == "counter":
            return self._counters(values, extra)
        if kind in ("histogram", "summary"):
            found = self._histograms(values, extra)
        else:
            found = self._gauges(values, extra or {}, live)
        self.known = self.fresh
        return found

    def _counters(
        self, values: dict[bytes, bytes], created: dict[bytes, bytes] | None
    ) -> list[Series]:
        """One field per series: ``known`` is updated in place (one lookup per series).

        A series a read returned may still be rendered by another scrape: each update
        is one atomic store (a value, a creation time), never a state in between.
        """
        known = self.known
        out: list[Series] = []
        breathe = Breather()
        for n, (f, v) in enumerate(values.items(), 1):
            if not n % BREATHE:
                breathe()  # a read runs in a worker thread: let the loop in
            series: Any = known.get(f)  # a ScalarSeries, or None
            if series is None:
                if f in known:
                    continue  # its labels do not fit this metric
                labels = self._parse(f)
                series = known[f] = None if labels is None else read_series(labels)
                if series is None:
                    continue
                series.created = 0.0
            put(series, float(v))
            if created is not None:
                raw = created.get(f)
                series.created = float(raw) if raw is not None else 0.0
            out.append(series)
        if len(known) > len(values):  # some series are gone from Redis: forget them
            self.known = {f: known[f] for f in values}
        return out

    def _histograms(
        self, values: dict[bytes, bytes], created: dict[bytes, bytes] | None
    ) -> list[Series]:
        """Buckets come in any order: they are gathered in one flat list first, then each
        series' counts replace its old ones in one atomic slice assignment (a scrape still
        rendering the series a previous read returned never sees them half updated)."""
        spec = self.spec
        index = {p.encode(): i for i, p in enumerate(bucket_parts(spec.bounds))}
        width = len(index)
        known, fresh = self.known, self.fresh
        order: list[HistogramSeries] = []
        fields: list[bytes] = []
        slot: dict[bytes, int] = {}  # a series' place in `order` (and in `flat`)
        flat: list[float] = []
        natives: dict[bytes, dict[int, float]] = {}  # a native histogram's buckets by field
        keys: dict[bytes, int | None] = {}  # a native bucket's key by its field part
        breathe = Breather()
        for n, (f, v) in enumerate(values.items(), 1):
            if not n % BREATHE:
                breathe()
            field, _, part = f.rpartition(SEP_BYTES)
            i = index.get(part)
            if i is None:
                if spec.native is not None:
                    if part in keys:
                        key = keys[part]
                    else:
                        key = keys[part] = _native_key(part)
                    if key is not None:
                        natives.setdefault(field, {})[key] = float(v)
                continue  # a bucket bound this process does not declare (config changed)
            at = slot.get(field)
            if at is None:
                if field in fresh:
                    continue  # its labels do not fit this metric
                series = known.get(field)
                if series is None and field not in known:
                    labels = self._parse(field)
                    if labels is not None:
                        series = HistogramSeries(labels, spec.bounds, spec.native is not None)
                        series.created = 0.0
                fresh[field] = series
                if not isinstance(series, HistogramSeries):
                    continue
                at = slot[field] = len(order)
                order.append(series)
                fields.append(field)
                flat.extend((0.0,) * width)
            flat[at * width + i] = float(v)
        for at, series in enumerate(order):
            counts: list[Any] = flat[at * width : (at + 1) * width]
            if series.native:  # its cell holds its native buckets before the sum
                counts[-1:-1] = [natives.get(fields[at], {})]
            cell = series.cells.get(BASE)
            if cell is None:
                series.cells[BASE] = counts
            else:
                cell[:] = counts  # one atomic store
            if created is not None:
                raw = created.get(fields[at])
                series.created = float(raw) if raw is not None else 0.0
        return list(order)

    def _gauges(
        self, values: dict[bytes, bytes], times: dict[bytes, bytes], live: set[str]
    ) -> list[Series]:
        spec = self.spec
        mode = spec.mode if spec.kind == "gauge" else "mostrecent"
        by_series: dict[bytes, list[tuple[str, bytes, float]]] = {}
        for f, v in values.items():
            field, _, worker_bytes = f.rpartition(SEP_BYTES)
            worker = worker_bytes.decode()
            if mode in LIVE_MODES and worker not in live:
                continue
            if not worker and mode != "mostrecent":
                continue  # a retired slot (see RETIRE_SCRIPT) counts where the last write wins
            by_series.setdefault(field, []).append((worker, v, float(times.get(f, b"0"))))
        out: list[Series] = []
        for field, entries in by_series.items():
            if spec.kind == "info":
                info = self.known.get(field)
                if info is None and field not in self.known:
                    labels = self._parse(field)
                    info = None if labels is None else InfoSeries(labels)
                self.fresh[field] = info
                if isinstance(info, InfoSeries):
                    info.info = tuple(json.loads(max(entries, key=lambda e: e[2])[1]).items())
                    out.append(info)
            elif mode in ("all", "liveall"):
                for worker, v, _ in sorted(entries):
                    key = field + SEP_BYTES + worker.encode()
                    series = self._scalar(key, field, ("worker", worker))
                    if series is not None:
                        put(series, float(v))
                        out.append(series)
            else:
                series = self._scalar(field, field)
                if series is not None:
                    put(series, _combine(mode, entries))
                    out.append(series)
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


def _native_key(part: bytes) -> int | None:
    """The key of a native bucket's field part (``n`` and the key), or None if it is none."""
    if part[:1] == b"n" and part[1:].lstrip(b"-").isdigit():
        return int(part[1:])
    return None
