"""What the framework route tests check: counts by template, label values, a 404 scanner."""

from __future__ import annotations

import random

import httpx
from prometheus_client.parser import text_string_to_metric_families

from apytheus import CollectorRegistry, generate_metrics
from apytheus.middleware import UNMATCHED_ROUTE

# 50 paths no app routes, as a scanner probes them (seeded: the same ones every run)
_rng = random.Random(17)
SCANNER_PATHS = [
    f"/{''.join(_rng.choices('abcdefghijklmnopqrstuvwxyz0123456789', k=10))}"
    f"/{_rng.choice(['wp-login.php', '.env', 'admin', 'config.json', 'x'])}"
    for _ in range(50)
]


def client(app: object) -> httpx.AsyncClient:
    """An httpx client calling ``app`` in-process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def request_counts(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    """``(method, route, status_code)`` → requests counted, read from the exposition text."""
    counts = {}
    for family in text_string_to_metric_families(generate_metrics(registry)):
        for sample in family.samples:
            if sample.name == "http_request_duration_seconds_count":
                labels = sample.labels
                key = (labels["method"], labels["route"], labels["status_code"])
                counts[key] = sample.value
    return counts


def label_values(registry: CollectorRegistry) -> set[str]:
    """Every label value of every sample the registry exposes."""
    return {
        value
        for family in text_string_to_metric_families(generate_metrics(registry))
        for sample in family.samples
        for value in sample.labels.values()
    }


async def scan(c: httpx.AsyncClient) -> None:
    """Request every `SCANNER_PATHS` path; each must be a 404."""
    for path in SCANNER_PATHS:
        response = await c.get(path)
        assert response.status_code == 404, (path, response.status_code)


def assert_scanner_collapsed(registry: CollectorRegistry) -> None:
    """The scan is one series, ``<unmatched>``, counted 50 times; no probed path is a label."""
    assert request_counts(registry) == {("GET", UNMATCHED_ROUTE, "404"): 50.0}
    values = label_values(registry)
    assert not any(path in value for path in SCANNER_PATHS for value in values)
