"""`write: if_empty` (contract §4a) per CRM, destination against its HTTPS sandbox: a
value set before is kept, an empty field is filled, a target whose fields all hold a
value is `skipped` / `fields_kept`, and the current values come from the lookup the
destination makes anyway; only records named by id (and Airtable upserts) cost an
extra read, counted in if_empty_reads_total."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devkit.factories import DEFAULT_TARGETS, make_batch, make_config, make_event
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import CONTACTS, batch, destination, hubspot_config, metric
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.airtable import AirtableDestination
from service.destinations.base import DestinationContext
from service.destinations.salesforce import SalesforceDestination
from service.metrics import Metrics
from service.models import DeliveryState
from service.settings import Settings

KEEP_REASONING = {"reasoning": {"write": "if_empty"}}
KEEP_ALL = {k: {"write": "if_empty"} for k in ("score", "reasoning", "evaluated_at")}
REP = "Typed by a rep: call back in May"


def settings(ca: Path) -> Settings:
    return Settings(bootstrap_servers="unused:9092", destination_ca_file=ca)


def reads(metrics: Metrics, destination: str) -> float:
    return metric(metrics, "if_empty_reads_total", destination=destination)


# --- Salesforce ---------------------------------------------------------------------


@pytest.fixture
async def sf(tmp_path: Path) -> AsyncIterator[tuple[SalesforceSandbox, SalesforceDestination]]:
    async with SalesforceSandbox(tmp_path) as sandbox:
        dest = SalesforceDestination(DestinationContext(settings(sandbox.ca_file), Metrics()))
        await dest.setup()
        yield sandbox, dest
        await dest.close()


def sf_config(options: dict[str, Any], **extra: Any) -> dict[str, Any]:
    target = {**DEFAULT_TARGETS["salesforce"][0], "field_options": options, **extra}
    return make_config("salesforce", targets=[target])


async def test_salesforce_keeps_a_set_value_and_fills_an_empty_one(
    sf: tuple[SalesforceSandbox, SalesforceDestination],
) -> None:
    sandbox, dest = sf
    [kept_id, filled_id] = sandbox.seed(
        "Lead",
        {"LastName": "A", "Company": "C", "Email": "a@x.example", "TS_Reasoning__c": REP},
        {"LastName": "B", "Company": "C", "Email": "b@x.example"},
    )
    events = [make_event(email="a@x.example", score="hot"), make_event(email="b@x.example")]
    outs = await dest.write(make_batch(sf_config(KEEP_REASONING), events, sandbox.credentials()))
    assert [o.state for o in outs] == [DeliveryState.DELIVERED] * 2
    leads = sandbox.records("Lead")
    assert leads[kept_id]["TS_Reasoning__c"] == REP and leads[kept_id]["TS_Score__c"] == "hot"
    assert leads[filled_id]["TS_Reasoning__c"] == events[1]["evaluation"]["reasoning"]
    [query] = [c.soql for c in sandbox.calls if c.soql]
    assert query.startswith("SELECT Id, Email, TS_Reasoning__c FROM Lead WHERE Email IN (")
    assert reads(dest.metrics, "salesforce") == 0  # read in the lookup it made anyway


async def test_salesforce_a_record_named_by_id_is_read_once_and_all_kept_is_fields_kept(
    sf: tuple[SalesforceSandbox, SalesforceDestination],
) -> None:
    sandbox, dest = sf
    [rid] = sandbox.seed(
        "Lead",
        {"LastName": "A", "Company": "C", "Email": "a@x.example", "TS_Score__c": "A+",
         "TS_Reasoning__c": REP, "TS_Evaluated_At__c": "2026-01-01T00:00:00.000+0000"},
    )  # fmt: skip
    event = make_event(email="a@x.example", crm_ids={"salesforce": {"Lead": rid}})
    [out] = await dest.write(make_batch(sf_config(KEEP_ALL), [event], sandbox.credentials()))
    assert (out.state, out.reason, out.records) == (DeliveryState.SKIPPED, "fields_kept", ())
    assert sandbox.records("Lead")[rid]["TS_Score__c"] == "A+"
    [query] = [c.soql for c in sandbox.calls if c.soql]
    assert "FROM Lead WHERE Id IN (" in query and "TS_Score__c" in query
    assert not sandbox.count("PATCH", "/composite/sobjects")  # nothing to write
    assert reads(dest.metrics, "salesforce") == 1


# --- HubSpot -----------------------------------------------------------------------


async def test_hubspot_reads_contacts_by_email_and_companies_in_their_search(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    async with HubSpotSandbox(tmp_path) as hs:
        hs.seed("contacts", email="a@x.example", ts_reasoning=REP)
        company = hs.seed("companies", domain="x.example", ts_score="warm")
        company_target = {"object": "companies", "fields": {"score": "ts_score"},
                          "match": {"crm_field": "domain", "event_field": "lead.domain"},
                          "field_options": {"score": {"write": "if_empty"}}}  # fmt: skip
        config = hubspot_config(
            targets=[{**CONTACTS, "field_options": KEEP_REASONING}, company_target],
            propensity=False,
        )
        events = [
            make_event(email="a@x.example", domain="x.example", score="hot"),
            make_event(email="new@x.example", domain="x.example"),
        ]
        dest = destination(hs, metrics)
        await dest.setup()
        try:
            outs = await dest.write(batch(hs, config, events))
        finally:
            await dest.close()
        assert [o.state for o in outs] == [DeliveryState.DELIVERED] * 2
        kept = hs.find("contacts", "email", "a@x.example")
        created = hs.find("contacts", "email", "new@x.example")
        assert kept is not None and kept.properties["ts_reasoning"] == REP
        assert kept.properties["ts_score"] == "hot"
        assert created is not None
        assert created.properties["ts_reasoning"] == events[1]["evaluation"]["reasoning"]
        assert hs.store.records["companies"][company].properties["ts_score"] == "warm"
        reads_sent = [c for c in hs.calls if c.path.endswith("/batch/read")]
        assert len(reads_sent) == 1 and "contacts" in reads_sent[0].path
        assert reads(metrics, "hubspot") == 1  # the company's value came with its search
        assert [c.path for c in hs.calls if c.path.endswith("/search")] == [
            "/crm/v3/objects/companies/search"
        ]


# --- Airtable ----------------------------------------------------------------------


def at_destination(sandbox: AirtableSandbox, metrics: Metrics) -> AirtableDestination:
    ctx = DestinationContext(settings(sandbox.ca_file), metrics, {"airtable": {}})
    return AirtableDestination(ctx)


async def test_airtable_lookups_read_in_place_upserts_and_ids_read_once(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    base = DEFAULT_TARGETS["airtable"][0]
    reasoning = base["fields"]["reasoning"]
    async with AirtableSandbox(tmp_path, rate_limit=1000) as at:
        [a, b, c] = at.seed(
            "Contacts",
            [
                {"Email": "a@x.example", reasoning: REP},
                {"Email": "b@x.example"},
                {"Email": "c@x.example", reasoning: REP},
            ],
        )
        dest = at_destination(at, metrics)
        await dest.setup()
        events = [
            make_event(email="a@x.example"),  # upsert (create_if_missing): read by value
            make_event(email="b@x.example"),
            make_event(email="c@x.example", crm_ids={"airtable": {"Contacts": c}}),  # by id
        ]
        upsert = {**base, "field_options": KEEP_REASONING}
        try:
            outs = await dest.write(
                make_batch(make_config("airtable", targets=[upsert]), events, at.credentials())
            )
        finally:
            await dest.close()
        before = reads(metrics, "airtable")
        cold = at_destination(at, metrics)  # a new record cache: these are looked up
        await cold.setup()
        lookup = {**upsert, "create_if_missing": False}
        again = [make_event(email="a@x.example"), make_event(email="b@x.example")]
        try:
            looked = await cold.write(
                make_batch(make_config("airtable", targets=[lookup]), again, at.credentials())
            )
        finally:
            await cold.close()
    rows = {r["id"]: r["fields"] for r in at.table("Contacts")}
    assert [o.state for o in outs] == [DeliveryState.DELIVERED] * 3
    assert rows[a][reasoning] == REP and rows[c][reasoning] == REP
    assert rows[b][reasoning] == again[1]["evaluation"]["reasoning"]
    assert before == 2  # one read by value (the upserts), one by RECORD_ID()
    assert [o.state for o in looked] == [DeliveryState.DELIVERED] * 2
    assert reads(metrics, "airtable") == 2  # the lookup read the cells itself
    assert rows[a][reasoning] == REP
