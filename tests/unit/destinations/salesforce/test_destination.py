"""The Salesforce destination against the HTTPS sandbox: mapping per object, matching
by id and by field, creation on and off, propensity, SOQL escaping, batching,
truncation and the API-usage gauge."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.factories import make_batch, make_config, make_event
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.base import Outcome
from service.destinations.salesforce import SalesforceDestination
from service.models import DeliveryState
from tests.unit.destinations.salesforce.conftest import destination

FIELDS = {
    "score": "TS_Score__c",
    "reasoning": "TS_Reasoning__c",
    "evaluated_at": "TS_Evaluated_At__c",
}
BY_EMAIL = {"crm_field": "Email", "event_field": "lead.email"}
BY_SITE = {"crm_field": "Website", "event_field": "lead.domain"}
PROPENSITY = {"enabled": True, "object": "Account", "match": BY_SITE, "field": "TS_Propensity__c"}


def config(*targets: dict[str, Any], propensity: dict[str, Any] | None = None) -> dict[str, Any]:
    return make_config("salesforce", targets=list(targets), propensity=propensity)


def target(obj: str, match: dict[str, str] = BY_EMAIL, **extra: Any) -> dict[str, Any]:
    return {"object": obj, "match": match, "fields": FIELDS, **extra}


# Pages of three records: the lookups' nextRecordsUrl is followed with a dozen Leads.
pytestmark = pytest.mark.parametrize("sandbox", [{"page_size": 3}], indirect=True, ids=["pages3"])


async def write(
    d: SalesforceDestination,
    sb: SalesforceSandbox,
    cfg: dict[str, Any],
    events: list[dict[str, Any]],
) -> list[Outcome]:
    outcomes = await d.write(make_batch(cfg, events, sb.credentials()))
    assert len(outcomes) == len(events)
    return outcomes


def sample(d: SalesforceDestination, name: str, **labels: str) -> float:
    value = d.metrics.registry.get_sample_value(f"trailspark_destinations_{name}", labels)
    return value or 0.0


async def test_each_object_gets_its_mapped_fields_matched_by_field(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    [lead] = sandbox.seed("Lead", {"LastName": "L", "Company": "C", "Email": "ADA@Example.com"})
    [contact] = sandbox.seed("Contact", {"LastName": "L", "Email": "ada@example.com"})
    [account] = sandbox.seed("Account", {"Name": "A", "Website": "analytical.example"})
    cfg = config(target("Lead"), target("Contact"), target("Account", BY_SITE))
    event = make_event(
        email="ada@example.com",
        score="warm",
        reasoning="ICP fit",
        evaluated_at="2026-11-22T10:14:59Z",
    )
    [out] = await write(dest, sandbox, cfg, [event])
    assert out.state is DeliveryState.DELIVERED
    assert {(r.object, r.id, r.action) for r in out.records} == {
        ("Lead", lead, "updated"), ("Contact", contact, "updated"), ("Account", account, "updated")
    }  # fmt: skip
    for obj, rid in (("Lead", lead), ("Contact", contact), ("Account", account)):
        record = sandbox.records(obj)[rid]
        assert (record["TS_Score__c"], record["TS_Reasoning__c"]) == ("warm", "ICP fit")
        assert record["TS_Evaluated_At__c"] == "2026-11-22T10:14:59Z"


async def test_crm_ids_are_used_first_without_a_lookup(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    [by_id, by_email] = sandbox.seed(
        "Lead",
        {"LastName": "A", "Company": "C", "Email": "other@example.com"},
        {"LastName": "B", "Company": "C", "Email": "lead@example.com"},
    )
    event = make_event(email="lead@example.com", crm_ids={"salesforce": {"Lead": by_id}})
    [out] = await write(dest, sandbox, config(target("Lead")), [event])
    assert [(r.id, r.action) for r in out.records] == [(by_id, "updated")]
    assert sandbox.count("GET", "/query") == 0
    assert "TS_Score__c" not in sandbox.records("Lead")[by_email]


async def test_no_match_is_skipped_unless_create_is_on(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    event = make_event(
        email="new@example.com", last_name=None, company=None, domain="newco.example"
    )
    [off] = await write(dest, sandbox, config(target("Lead")), [event])
    assert (off.state, off.reason) == (DeliveryState.SKIPPED, "record_not_found")
    assert sandbox.count("POST", "/composite/sobjects") == 0 and sandbox.records("Lead") == {}

    cfg = config(target("Lead", create_if_missing=True), target("Contact", create_if_missing=True))
    [on] = await write(dest, sandbox, cfg, [event])
    assert on.state is DeliveryState.DELIVERED
    assert sorted((r.object, r.action) for r in on.records) == [
        ("Contact", "created"),
        ("Lead", "created"),
    ]
    lead = next(iter(sandbox.records("Lead").values()))
    assert (lead["LastName"], lead["Company"], lead["Email"]) == (
        "new",
        "newco.example",
        "new@example.com",
    )
    assert lead["FirstName"] == "Ada" and lead["TS_Score__c"] == "hot"
    contact = next(iter(sandbox.records("Contact").values()))
    assert (contact["LastName"], contact["Email"]) == ("new", "new@example.com")

    [again] = await write(dest, sandbox, cfg, [event])  # a redelivery updates, never duplicates
    assert {r.action for r in again.records} == {"updated"}
    assert len(sandbox.records("Lead")) == len(sandbox.records("Contact")) == 1


async def test_propensity_goes_to_the_account_and_a_miss_is_only_counted(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    [site, by_id] = sandbox.seed(
        "Account", {"Name": "A", "Website": "analytical.example"}, {"Name": "B"}
    )
    leads = sandbox.seed(
        "Lead", *[{"LastName": "L", "Company": "C", "Email": f"p{i}@x.example"} for i in range(3)]
    )
    events = [
        make_event(email="p0@x.example", propensity="high"),
        make_event(
            email="p1@x.example", propensity="low", crm_ids={"salesforce": {"Account": by_id}}
        ),
        make_event(email="p2@x.example", propensity="medium", domain="nowhere.example"),
    ]
    cfg = config(target("Lead"), propensity=PROPENSITY)
    outs = await write(dest, sandbox, cfg, events)
    assert [o.state for o in outs] == [DeliveryState.DELIVERED] * 3
    assert ("Account", site) in {(r.object, r.id) for r in outs[0].records}
    assert ("Account", by_id) in {(r.object, r.id) for r in outs[1].records}
    assert [r.object for r in outs[2].records] == ["Lead"]
    accounts = sandbox.records("Account")
    assert (accounts[site]["TS_Propensity__c"], accounts[by_id]["TS_Propensity__c"]) == (
        "high",
        "low",
    )
    assert len(accounts) == 2  # never created for propensity
    assert sample(dest, "propensity_unmatched_total", destination="salesforce") == 1
    assert leads[0] in {r.id for r in outs[0].records}


async def test_soql_injection_in_an_email_stays_a_literal(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    nasty = "x' OR Name != '"
    [target_id, *others] = sandbox.seed(
        "Lead",
        {"LastName": "T", "Company": "C", "Email": nasty},
        {"LastName": "O", "Company": "C", "Email": "one@example.com"},
        {"LastName": "O", "Company": "C", "Email": "x"},
    )
    [out] = await write(dest, sandbox, config(target("Lead")), [make_event(email=nasty)])
    assert [r.id for r in out.records] == [target_id]
    assert all("TS_Score__c" not in sandbox.records("Lead")[o] for o in others)
    [query] = [c.soql for c in sandbox.calls if c.soql]
    assert query == (
        "SELECT Id, Email FROM Lead WHERE Email IN ('x\\' OR Name != \\'') AND IsConverted = false"
    )


async def test_a_thousand_events_take_at_most_ten_collection_calls(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    sandbox.seed(
        "Lead",
        *[{"LastName": "L", "Company": "C", "Email": f"l{i}@x.example"} for i in range(1000)],
    )
    sandbox.seed("Account", *[{"Name": f"A{i}", "Website": f"d{i}.example"} for i in range(5)])
    cfg = config(target("Lead"), propensity=PROPENSITY)
    events = [make_event(email=f"l{i}@x.example", domain=f"d{i % 5}.example") for i in range(1000)]
    outcomes: list[Outcome] = []
    for start in range(0, 1000, dest.max_batch_size):  # the lanes hand over max_batch_size items
        outcomes += await write(dest, sandbox, cfg, events[start : start + dest.max_batch_size])
    assert dest.max_batch_size == 200
    assert all(o.state is DeliveryState.DELIVERED for o in outcomes)
    collections = [c for c in sandbox.calls if c.path.endswith("/composite/sobjects")]
    assert len(collections) <= 10 and all(0 < c.records <= 200 for c in collections)
    lookups = [c for c in sandbox.calls if c.soql]
    # One IN query per object per batch, not one per event; the five Accounts are found
    # by the first batch's query and then come from the record cache.
    assert len(lookups) == 5 + 1
    assert sum(1 for r in sandbox.records("Lead").values() if r.get("TS_Score__c") == "hot") == 1000


async def test_lookups_follow_pages_and_split_long_in_lists(sandbox: SalesforceSandbox) -> None:
    d = destination(sandbox, uri_budget=400)
    sandbox.seed(
        "Lead",
        *[{"LastName": "L", "Company": "C", "Email": f"person.{i}@x.example"} for i in range(12)],
    )
    sandbox.seed("Lead", {"LastName": "Dup", "Company": "C", "Email": "person.0@x.example"})
    events = [make_event(email=f"person.{i}@x.example") for i in range(12)]
    try:
        outs = await write(d, sandbox, config(target("Lead")), events)
    finally:
        await d.close()
    assert all(o.state is DeliveryState.DELIVERED for o in outs)
    assert len(outs[0].records) == 2  # both duplicates of person.0 get the score
    assert len([c for c in sandbox.calls if c.soql]) > 1  # the IN list was split
    assert any("/query/01g" in c.path for c in sandbox.calls)  # nextRecordsUrl followed


async def test_long_reasoning_is_truncated_and_counted_not_dropped(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    sandbox.seed("Lead", {"LastName": "L", "Company": "C", "Email": "long@example.com"})
    sandbox.seed("Contact", {"LastName": "L", "Email": "long@example.com"})
    reasoning = "r" * 131_073
    cfg = config(target("Lead"), target("Contact", max_lengths={"reasoning": 50}))
    [out] = await write(
        dest, sandbox, cfg, [make_event(email="long@example.com", reasoning=reasoning)]
    )
    assert out.state is DeliveryState.DELIVERED
    [lead] = sandbox.records("Lead").values()
    [contact] = sandbox.records("Contact").values()
    assert len(lead["TS_Reasoning__c"]) == 131_072 and len(contact["TS_Reasoning__c"]) == 50
    assert sample(dest, "truncations_total", destination="salesforce", field="reasoning") == 2


async def test_api_usage_gauge_follows_sforce_limit_info(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    sandbox.api_limit = 1000
    await write(dest, sandbox, config(target("Lead")), [make_event()])
    ratio = sample(dest, "api_usage_ratio", destination="salesforce")
    assert ratio == pytest.approx(sandbox.api_used / 1000) and ratio > 0


async def test_url_special_characters_survive_the_query_string(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    # '+' must not turn into a space, nor '&'/'#'/'%' cut or change the q= parameter.
    emails = [
        "a+b@x.com",
        "q&r=s@x.com",
        "h#sh@x.com",
        "p%20c@x.com",
        "ünï@x.com",
        "back\\slash@x.com",
    ]
    ids = sandbox.seed("Lead", *[{"LastName": "L", "Company": "C", "Email": e} for e in emails])
    outs = await write(dest, sandbox, config(target("Lead")), [make_event(email=e) for e in emails])
    assert [[r.id for r in o.records] for o in outs] == [[i] for i in ids]
