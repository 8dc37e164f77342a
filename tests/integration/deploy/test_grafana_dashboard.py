"""deploy/grafana/trailspark-destinations.json: valid, complete, and every expression
names a series the service really exports (parsed from a real Metrics registry's
/metrics text) or a recording rule of deploy/prometheus/rules.yml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from service.metrics import Metrics

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "deploy" / "grafana" / "trailspark-destinations.json"
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
# Series names in PromQL: ours, the process collector's, and recording rules (level:name:op).
SERIES = re.compile(r"\b(?:[a-z_]+:)?(?:trailspark_destinations_|process_)[a-z_]+(?::[a-z0-9_]+)?")


def exported() -> set[str]:
    """Sample names a scrape can return, from the TYPE lines of the exposition."""
    names = set()
    for line in Metrics().render().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "counter":  # the TYPE line may or may not carry _total already
                name = name.removesuffix("_total")
            names |= {name + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return names


def recorded() -> set[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = dashboard["panels"]
    return found


def test_dashboard_is_valid_json_with_unique_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "destination"} <= variables


def test_dashboard_covers_what_an_operator_needs() -> None:
    titles = " | ".join(p["title"].lower() for p in panels())
    for topic in (
        "throughput",
        "latency percentiles",
        "per destination",
        "lag",
        "retries",
        "circuit",
        "rate limit",
        "dlq",
    ):
        assert topic in titles, topic


def test_every_expression_names_an_exported_series_or_a_recording_rule() -> None:
    known = exported() | recorded()
    assert "trailspark_destinations_deliveries_total" in known  # the parse works
    assert "destination:trailspark_destinations_delivery_success_ratio:rate5m" in known
    used: set[str] = set()
    for panel in panels():
        for target in panel.get("targets", []):
            names = set(SERIES.findall(target["expr"]))
            assert names, f"{panel['title']}: no metric in {target['expr']!r}"
            unknown = names - known
            assert not unknown, f"{panel['title']}: not exported: {sorted(unknown)}"
            used |= names
    # The contract metrics (§8) all have a panel.
    for name in (
        "events_consumed_total",
        "deliveries_total",
        "delivery_latency_seconds_bucket",
        "destination_requests_total",
        "destination_rate_limited_total",
        "retries_total",
        "dlq_total",
        "configs_rejected_total",
        "consumer_lag",
        "inflight_deliveries",
        "circuit_open",
    ):
        assert f"trailspark_destinations_{name}" in used, name
