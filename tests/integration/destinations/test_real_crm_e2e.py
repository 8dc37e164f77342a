"""Issue 14 end to end, one test per CRM: the real service (real destinations) on a
real broker, writing to the HTTPS sandboxes with refresh-token credentials files.
Statuses are read back from the status topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devkit.factories import DEFAULT_TARGETS, make_config, make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import PROPENSITY as HS_PROPENSITY
from devkit.sandboxes.hubspot.testing import hubspot_config
from devkit.sandboxes.salesforce import SalesforceSandbox

SF_FIELDS = {"score": "TS_Score__c", "reasoning": "TS_Reasoning__c"}
BY_EMAIL = {"crm_field": "Email", "event_field": "lead.email"}
SF_PROPENSITY = {
    "enabled": True,
    "object": "Account",
    "match": {"crm_field": "Website", "event_field": "lead.domain"},
    "field": "TS_Propensity__c",
}
REP = "0055g00000REP00AAA"


@pytest.fixture
def tls(tmp_path: Path) -> Path:
    folder = tmp_path / "tls"
    folder.mkdir()
    return folder


def harness(kafka: str, tmp_path: Path, ca: Path) -> ServiceHarness:
    return ServiceHarness(kafka, tmp_path, env={"DESTINATION_CA_FILE": str(ca)})


def refs(status: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(r["object"], r["id"], r["action"]) for r in status["records"]}


@pytest.fixture
async def sf(tls: Path) -> AsyncIterator[SalesforceSandbox]:
    async with SalesforceSandbox(tls) as sandbox:
        sandbox.store.assignment_owner = "0055g00000RULE0AAA"
        sandbox.oauth.lifetime_s = 1.0  # sessions expire during the test
        yield sandbox


async def test_salesforce(kafka_bootstrap: str, tmp_path: Path, sf: SalesforceSandbox) -> None:
    lead = {"LastName": "L", "Company": "C", "OwnerId": REP}
    [converted, gone, current] = sf.seed(
        "Lead",
        {**lead, "Email": "conv@example.com"},
        {**lead, "Email": "moved@example.com"},
        {**lead, "Email": "moved@example.com"},
    )
    contact = sf.store.convert(converted)
    sf.store.records["Lead"].pop(gone)
    sf.store.deleted.add(gone)
    [account] = sf.seed("Account", {"Name": "AE", "Website": "analytical.example"})
    events = {
        "converted": make_event(
            email="conv@example.com", crm_ids={"salesforce": {"Lead": converted}}
        ),
        "moved": make_event(email="moved@example.com", crm_ids={"salesforce": {"Lead": gone}}),
        "account_only": make_event(email="nobody@example.com"),
    }
    targets = [
        {"object": "Lead", "match": BY_EMAIL, "fields": SF_FIELDS},
        {"object": "Contact", "match": BY_EMAIL, "fields": SF_FIELDS},
    ]
    async with harness(kafka_bootstrap, tmp_path, sf.ca_file) as h:
        h.write_secret("org_1-salesforce", sf.refresh_credentials())
        await h.put_config(make_config("salesforce", targets=targets, propensity=SF_PROPENSITY))
        for event in events.values():
            await h.send_event(event)
        done = {s["event_id"]: s for s in await h.wait_statuses(3)}
    got = {name: done[e["event_id"]] for name, e in events.items()}
    assert refs(got["converted"]) == {
        ("Contact", contact, "updated"),
        ("Account", account, "updated"),
    }
    assert refs(got["moved"]) == {("Lead", current, "updated"), ("Account", account, "updated")}
    assert (got["account_only"]["status"], got["account_only"]["reason"]) == (
        "skipped",
        "record_not_found",
    )
    assert refs(got["account_only"]) == {("Account", account, "updated")}
    assert {got[n]["status"] for n in ("converted", "moved")} == {"delivered"}
    writes = {c.auto_assign for c in sf.calls if c.path.endswith("/composite/sobjects")}
    assert writes == {"FALSE"}
    assert sf.records("Lead")[current]["OwnerId"] == REP
    assert sf.oauth.grants >= 1


async def test_hubspot(kafka_bootstrap: str, tmp_path: Path, tls: Path) -> None:
    async with HubSpotSandbox(tls) as hs:
        primary = hs.seed("contacts", email="ada@example.com")
        secondary = hs.seed("contacts", email="ada.old@example.com")
        hs.store.merge("contacts", primary, secondary)
        company = hs.seed("companies", name="AE", domain="analytical.example", ts_propensity="low")
        events = {
            "merged": make_event(
                email="ada@example.com",
                propensity=None,
                crm_ids={"hubspot": {"contacts": secondary}},
            ),
            "company_only": make_event(email="nobody@example.com", reasoning=""),
        }
        async with harness(kafka_bootstrap, tmp_path, hs.ca_file) as h:
            h.write_secret("org_1-hubspot", hs.refresh_credentials())
            cfg = hubspot_config(contacts={"create_if_missing": False})
            assert cfg["propensity"] == HS_PROPENSITY
            await h.put_config(cfg)
            await h.send_event(events["merged"])
            await h.wait_statuses(1)
            await h.send_event(events["company_only"])
            done = {s["event_id"]: s for s in await h.wait_statuses(2)}
        got = {name: done[e["event_id"]] for name, e in events.items()}
        assert got["merged"]["status"] == "delivered"
        assert refs(got["merged"]) == {("contacts", primary, "updated")}
        # propensity null: the company kept "low" until the second event carried "high"
        assert (got["company_only"]["status"], got["company_only"]["reason"]) == (
            "skipped",
            "record_not_found",
        )
        assert refs(got["company_only"]) == {("companies", company, "updated")}
        props = hs.store.records["companies"][company].properties
        assert props["ts_propensity"] == "high" and "ts_reasoning" not in props
        assert hs.oauth.grants == 1


async def test_airtable(kafka_bootstrap: str, tmp_path: Path, tls: Path) -> None:
    async with AirtableSandbox(tls, rate_limit=1000) as at:
        [current] = at.seed("Contacts", [{"Email": "ada@example.com", "TS Reasoning": "kept"}])
        event = make_event(
            email="ada@example.com",
            reasoning="",
            crm_ids={"airtable": {"Contacts": "recDELETED0000000"}},
        )
        lookup_only = {**DEFAULT_TARGETS["airtable"][0], "create_if_missing": False}
        async with harness(kafka_bootstrap, tmp_path, at.ca_file) as h:
            h.write_secret("org_1-airtable", at.credentials())
            await h.put_config(make_config("airtable", targets=[lookup_only]))
            await h.send_event(event)
            [status] = await h.wait_statuses(1)
        assert status["status"] == "delivered"
        assert refs(status) == {("Contacts", current, "updated")}
        [row] = at.table("Contacts")
        assert (row["fields"]["TS Score"], row["fields"]["TS Reasoning"]) == ("hot", "kept")
