"""FLUSH: a worker's flush health as metric families (exposed with the default registry)."""

from __future__ import annotations

from .._labels import LabelSet
from .._samples import MetricFamily, Sample
from ._flush_round import FlushRound


def health_families(flushes: FlushRound) -> list[MetricFamily]:
    """This worker's flush health, exposed with the default registry."""
    pending = flushes.buffer.pending
    labels = LabelSet(("worker",), (flushes.buffer.worker,))

    def family(name: str, kind: str, doc: str, value: float) -> MetricFamily:
        sample = name + "_total" if kind == "counter" else name
        return MetricFamily(name, doc, kind, [Sample(sample, labels, value)])

    return [
        family(
            "apytheus_redis_flush_errors",
            "counter",
            "Flushes to Redis that failed (their deltas stayed buffered).",
            float(flushes.flush_errors),
        ),
        family(
            "apytheus_redis_resends",
            "counter",
            "Times Redis had lost or rolled back this worker's data (a restart, say), "
            "so that it sent its series again.",
            float(flushes.resends),
        ),
        MetricFamily(
            "apytheus_redis_dropped_updates",
            "Updates Redis refused for good, by reason (a key of another type, say); "
            "an outage or a full Redis drops nothing.",
            "counter",
            [
                Sample(
                    "apytheus_redis_dropped_updates_total",
                    labels.plus(("reason", reason)),
                    float(count),
                )
                for reason, count in sorted(flushes.dropped_by_reason.items())
            ],
        ),
        family(
            "apytheus_redis_buffered_fields",
            "gauge",
            "Fields of the batch waiting for Redis to acknowledge it.",
            float(pending.fields if pending is not None else 0),
        ),
        family(
            "apytheus_redis_flush_duration_seconds",
            "gauge",
            "Seconds the last flush to Redis took (its round trips included).",
            flushes.duration,
        ),
        family(
            "apytheus_redis_slow_flushes",
            "counter",
            "Flushes that took half of heartbeat_ttl or more: Redis is slow, and this "
            "worker is at risk of looking dead to live* gauges.",
            float(flushes.slow_flushes),
        ),
        family(
            "apytheus_redis_last_flush_timestamp_seconds",
            "gauge",
            "Unix time of the last successful flush to Redis.",
            flushes.last_flush,
        ),
    ]
