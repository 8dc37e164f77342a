"""Helpers for HubSpot tests: a destination wired to a sandbox, configs, batches."""

from __future__ import annotations

from typing import Any

from devkit.factories import make_batch, make_config
from devkit.sandboxes.hubspot import HubSpotSandbox
from service.destinations.base import Batch, DestinationContext
from service.destinations.hubspot import HubSpotDestination
from service.metrics import Metrics
from service.settings import Settings

CONTACTS = {
    "object": "contacts",
    "match": {"crm_field": "email", "event_field": "lead.email"},
    "fields": {"score": "ts_score", "reasoning": "ts_reasoning", "evaluated_at": "ts_evaluated_at"},
    "create_if_missing": True,
}
PROPENSITY = {
    "enabled": True,
    "object": "companies",
    "match": {"crm_field": "domain", "event_field": "lead.domain"},
    "field": "ts_propensity",
}


def destination(
    sandbox: HubSpotSandbox, metrics: Metrics | None = None, timeout_s: float = 5.0, **options: Any
) -> HubSpotDestination:
    settings = Settings(
        bootstrap_servers="unused",
        destination_ca_file=sandbox.ca_file,
        destination_timeout_s=timeout_s,
    )
    ctx = DestinationContext(settings, metrics or Metrics(), {"hubspot": options})
    return HubSpotDestination(ctx)


def hubspot_config(
    *,
    contacts: dict[str, Any] | None = None,
    targets: list[dict[str, Any]] | None = None,
    propensity: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    return make_config(
        "hubspot",
        targets=targets if targets is not None else [{**CONTACTS, **(contacts or {})}],
        propensity=PROPENSITY if propensity else None,
        **overrides,
    )


def batch(
    sandbox: HubSpotSandbox, config: dict[str, Any], events: list[dict[str, Any]], **creds: str
) -> Batch:
    return make_batch(config, events, {**sandbox.credentials(), **creds})


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"trailspark_destinations_{name}", labels)
    return value or 0.0
