"""A load the Redis tests record: counters and a histogram, and their totals as a scrape sees."""

from __future__ import annotations

from apytheus import CollectorRegistry, Counter, Histogram


class Load:
    """The metrics a test records into, and their totals as a scrape sees them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.jobs = Counter("jobs", "Jobs", ["kind"], registry=registry)
        self.latency = Histogram("lat", "Latency", registry=registry)

    def record(self, n: int) -> None:
        for i in range(n):
            self.jobs.labels(kind=str(i % 3)).inc()
            self.latency.observe(0.1)

    def totals(self) -> tuple[float, float | None]:
        get = self.registry.get_sample_value
        jobs = sum(get("jobs_total", {"kind": k}) or 0 for k in "012")
        return jobs, get("lat_count")
