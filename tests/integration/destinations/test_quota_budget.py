"""`max_daily_api_share` (issue 14): this service's share of the org's daily API
allocation, read from the sandboxes' limit headers; spent -> deferred, no attempts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devkit.factories import make_batch, make_config, make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import hubspot_config
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.base import Destination, DestinationContext
from service.destinations.hubspot import HubSpotDestination
from service.destinations.salesforce import SalesforceDestination
from service.errors import QuotaExhausted
from service.metrics import Metrics
from service.models import DeliveryState
from service.settings import Settings


def budget_refusals(metrics: Metrics, destination: str) -> float:
    value = metrics.registry.get_sample_value(
        "trailspark_destinations_quota_budget_exhausted_total", {"destination": destination}
    )
    return value or 0.0


async def test_salesforce_stops_at_its_share_of_the_org_limit(tmp_path: Path) -> None:
    async with SalesforceSandbox(tmp_path, api_limit=20) as sf:
        emails = [f"p{i}@x.example" for i in range(10)]
        sf.seed("Lead", *[{"LastName": "L", "Company": "C", "Email": e} for e in emails])
        metrics = Metrics()
        settings = Settings(bootstrap_servers="unused:9092", destination_ca_file=sf.ca_file)
        dest = SalesforceDestination(DestinationContext(settings, metrics))
        capped = make_config("salesforce", max_daily_api_share=0.25)  # 5 of the org's 20
        delivered = 0
        try:
            with pytest.raises(QuotaExhausted) as caught:
                for email in emails:
                    batch = make_batch(capped, [make_event(email=email)], sf.credentials())
                    [out] = await dest.write(batch)
                    assert out.state is DeliveryState.DELIVERED
                    delivered += 1
            used = len(sf.calls)
            unlimited = make_config("salesforce")  # no share: the rest of the allocation is ours
            batch = make_batch(unlimited, [make_event(email=emails[-1])], sf.credentials())
            [out] = await dest.write(batch)
        finally:
            await dest.close()
    assert caught.value.code == "quota_budget_exhausted" and caught.value.retry_after > 0
    assert used == 5 and delivered == 2  # query + PATCH each; the third lookup is refused
    assert budget_refusals(metrics, "salesforce") == 1
    assert out.state is DeliveryState.DELIVERED


def hubspot_harness(kafka: str, tmp_path: Path, hs: HubSpotSandbox) -> ServiceHarness:
    destinations: dict[str, Destination] = {}
    env = {"DESTINATION_CA_FILE": str(hs.ca_file), "MAX_ATTEMPTS": "1"}
    h = ServiceHarness(kafka, tmp_path, env=env, destinations=destinations)
    options: dict[str, Any] = {"daily_retry_s": 1.0}  # probe for the day's reset every second
    destinations["hubspot"] = HubSpotDestination(
        DestinationContext(h.settings, h.metrics, {"hubspot": options})
    )
    return h


async def test_hubspot_defers_without_attempts_until_the_day_resets(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    async with (
        HubSpotSandbox(tls, daily_limit=40) as hs,
        hubspot_harness(kafka_bootstrap, tmp_path, hs) as h,
    ):
        h.write_secret("org_1-hubspot", hs.credentials())
        await h.put_config(hubspot_config(propensity=False, max_daily_api_share=0.1))
        for n in range(8):  # one upsert each; 4 requests are this service's share
            await h.send_event(make_event(email=f"p{n}@example.com"))
            if n < 4:
                await h.wait_statuses(n + 1, timeout=30)
        await h.wait_until(
            lambda: any(s["status"] == "retrying" for s in h.statuses), 30, "a deferral"
        )
        spent = len(hs.calls)
        hs.reset_daily()  # the account's day resets: the next probe sees it
        await h.wait_until(
            lambda: sum(s["status"] == "delivered" for s in h.statuses) == 8, 30, "all 8"
        )
        refused = budget_refusals(h.metrics, "hubspot")
    deferred = [s for s in h.statuses if s["status"] == "retrying"]
    assert spent <= 4 + 1  # the share, and at most one probe before the reset
    # The refusal says quota_budget_exhausted; deliveries the pipeline then parks while the
    # lane is unavailable carry its generic quota_exhausted (service/pipeline/deliver.py).
    codes = {s["error"]["code"] for s in deferred}
    assert "quota_budget_exhausted" in codes and codes <= {
        "quota_budget_exhausted",
        "quota_exhausted",
    }
    assert all(s["attempts"] == 1 for s in h.statuses)  # waiting spent no attempt
    assert refused >= 1
