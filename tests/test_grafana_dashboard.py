"""The Grafana dashboard of examples/grafana: valid JSON, and latency with exemplars."""

from __future__ import annotations

import json
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parent.parent / "examples" / "grafana" / "apytheus-http.json"


def test_the_latency_panel_asks_for_exemplars_of_the_duration_buckets() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = {p["title"]: p for p in dashboard["panels"]}
    assert len(panels) == len(dashboard["panels"])
    assert len({p["id"] for p in dashboard["panels"]}) == len(panels)
    latency = panels["Latency percentiles, by route"]
    asking = [t for t in latency["targets"] if t.get("exemplar") is True]
    # one target is enough: each one that asks fetches the same exemplars again
    assert len(asking) == 1
    assert "http_request_duration_seconds_bucket" in asking[0]["expr"]
    assert asking[0]["datasource"]["type"] == "prometheus"
    others = [t for p in dashboard["panels"] if p is not latency for t in p["targets"]]
    assert not [t for t in others if t.get("exemplar")]
