"""STORE: turn one metric's Redis hashes into series, merged over workers (pure, no I/O)."""

from __future__ import annotations

import json

from .._labels import LabelSet
from ._protocol import MetricSpec, Series
from ._redis_layout import SEP, bucket_parts
from ._series import HistogramSeries, InfoSeries, ScalarSeries

LIVE_MODES = frozenset({"livesum", "livemax", "livemin", "livemostrecent", "liveall"})


class Merge:
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
            if mode in LIVE_MODES and worker not in live:
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
