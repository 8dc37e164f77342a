"""Lookups per delivered record for re-evaluated leads, record cache off vs on (issue 14).

Counts the lookup requests the sandboxes answer: Salesforce SOQL queries, HubSpot
searches, Airtable list calls. 20 leads (4 company domains) are evaluated once,
then re-evaluated twice; only the re-evaluations are counted. Each event is its
own batch (how re-evaluations usually arrive), so batching does not hide lookups.
`pytest -s tests/unit/destinations/test_lookup_counts.py` prints the figures (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from devkit.factories import DEFAULT_TARGETS, make_batch, make_config, make_event
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import PROPENSITY as HS_PROPENSITY
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.airtable import AirtableDestination
from service.destinations.base import DestinationContext
from service.destinations.hubspot import HubSpotDestination
from service.destinations.salesforce import SalesforceDestination, SalesforceOptions
from service.metrics import Metrics
from service.models import DeliveryState
from service.settings import Settings

LEADS = 20
ROUNDS = 3
SF_PROPENSITY = {
    "enabled": True,
    "object": "Account",
    "match": {"crm_field": "Website", "event_field": "lead.domain"},
    "field": "TS_Propensity__c",
}
HS_COMPANIES = {
    "object": "companies",
    "match": {"crm_field": "domain", "event_field": "lead.domain"},
    "fields": {"score": "ts_score"},
}


def events(org: str = "org_1") -> list[dict[str, Any]]:
    return [
        make_event(org, email=f"p{i}@x.example", domain=f"d{i % 4}.example") for i in range(LEADS)
    ]


async def per_record(
    write: Callable[[dict[str, Any]], Awaitable[int]], lookups: Callable[[], int]
) -> float:
    """Lookups per record written in the re-evaluation rounds."""
    written = 0
    for round_no in range(ROUNDS):
        if round_no == 1:
            before, written = lookups(), 0
        for event in events():
            written += await write(event)
    return (lookups() - before) / written


async def salesforce(tmp: Path, cache_size: int) -> float:
    async with SalesforceSandbox(tmp) as sb:
        sb.seed(
            "Lead",
            *[{"LastName": "L", "Company": "C", "Email": f"p{i}@x.example"} for i in range(LEADS)],
        )
        sb.seed("Account", *[{"Name": f"A{d}", "Website": f"d{d}.example"} for d in range(4)])
        settings = Settings(bootstrap_servers="unused:9092", destination_ca_file=sb.ca_file)
        dest = SalesforceDestination(
            DestinationContext(settings, Metrics()), SalesforceOptions(cache_size=cache_size)
        )
        cfg = make_config("salesforce", propensity=SF_PROPENSITY)

        async def write(event: dict[str, Any]) -> int:
            [out] = await dest.write(make_batch(cfg, [event], sb.credentials()))
            assert out.state is DeliveryState.DELIVERED
            return len(out.records)

        try:
            return await per_record(write, lambda: sum(1 for c in sb.calls if c.soql))
        finally:
            await dest.close()


async def hubspot(tmp: Path, cache_size: int) -> float:
    async with HubSpotSandbox(tmp, search_per_s=1000) as hs:
        for d in range(4):
            hs.seed("companies", name=f"C{d}", domain=f"d{d}.example")
        settings = Settings(bootstrap_servers="unused:9092", destination_ca_file=hs.ca_file)
        options = {"cache_size": cache_size, "search_requests": 1000}  # not timing search limits
        dest = HubSpotDestination(DestinationContext(settings, Metrics(), {"hubspot": options}))
        cfg = make_config("hubspot", propensity=HS_PROPENSITY)

        async def write(event: dict[str, Any]) -> int:
            [out] = await dest.write(make_batch(cfg, [event], hs.credentials()))
            assert out.state is DeliveryState.DELIVERED
            return len(out.records)

        try:
            return await per_record(write, lambda: hs.count("/search"))
        finally:
            await dest.close()


async def airtable(tmp: Path, cache_size: int) -> float:
    async with AirtableSandbox(tmp, rate_limit=10_000) as at:
        at.seed("Contacts", [{"Email": f"p{i}@x.example"} for i in range(LEADS)])
        settings = Settings(bootstrap_servers="unused:9092", destination_ca_file=at.ca_file)
        options = {"cache_size": cache_size, "requests_per_second": 10_000}
        dest = AirtableDestination(DestinationContext(settings, Metrics(), {"airtable": options}))
        target = {**DEFAULT_TARGETS["airtable"][0], "create_if_missing": False}
        cfg = make_config("airtable", targets=[target])
        await dest.setup()

        async def write(event: dict[str, Any]) -> int:
            [out] = await dest.write(make_batch(cfg, [event], at.credentials()))
            assert out.state is DeliveryState.DELIVERED
            return len(out.records)

        try:
            return await per_record(write, lambda: len(at.calls("GET")))
        finally:
            await dest.close()


async def test_the_cache_removes_lookups_for_re_evaluated_leads(tmp_path: Path) -> None:
    figures = {}
    for name, run in (("salesforce", salesforce), ("hubspot", hubspot), ("airtable", airtable)):
        figures[name] = (await run(tmp_path, 0), await run(tmp_path, 100_000))
    for name, (off, on) in figures.items():
        print(f"{name}: lookups per delivered record, re-evaluations: {off:.2f} -> {on:.2f}")
    assert figures["salesforce"] == (1.0, 0.0)  # Lead + Account: 2 queries for 2 records
    assert figures["hubspot"] == (0.5, 0.0)  # company search; contacts go by email
    assert figures["airtable"] == (1.0, 0.0)
