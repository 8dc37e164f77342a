"""What a real customer's Salesforce org adds (issue 14), against the HTTPS sandbox:
no owner reassignment, the status following the targets, no blanked fields,
converted Leads, records that moved, and the record-id cache."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.factories import make_batch, make_config, make_event
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.base import Outcome
from service.destinations.salesforce import SalesforceDestination
from service.models import DeliveryState

FIELDS = {"score": "TS_Score__c", "reasoning": "TS_Reasoning__c"}
BY_EMAIL = {"crm_field": "Email", "event_field": "lead.email"}
PROPENSITY = {
    "enabled": True,
    "object": "Account",
    "match": {"crm_field": "Website", "event_field": "lead.domain"},
    "field": "TS_Propensity__c",
}
RULE_OWNER = "0055g00000RULE0AAA"
REP = "0055g00000REP00AAA"


def target(obj: str, **extra: Any) -> dict[str, Any]:
    return {"object": obj, "match": BY_EMAIL, "fields": FIELDS, **extra}


def config(*targets: dict[str, Any], propensity: dict[str, Any] | None = None) -> dict[str, Any]:
    return make_config("salesforce", targets=list(targets), propensity=propensity)


@pytest.fixture(autouse=True)
def assignment_rule(sandbox: SalesforceSandbox) -> None:
    sandbox.store.assignment_owner = RULE_OWNER  # the org has an active assignment rule


async def write(
    d: SalesforceDestination, sb: SalesforceSandbox, cfg: dict[str, Any], *events: dict[str, Any]
) -> list[Outcome]:
    return await d.write(make_batch(cfg, list(events), sb.credentials()))


def refs(out: Outcome) -> set[tuple[str, str, str]]:
    return {(r.object, r.id, r.action) for r in out.records}


def lead(sandbox: SalesforceSandbox, email: str, **extra: Any) -> str:
    [rid] = sandbox.seed("Lead", {"LastName": "L", "Company": "C", "Email": email, **extra})
    return rid


async def test_writes_never_reassign_the_owner(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    mine = lead(sandbox, "ada@example.com", OwnerId=REP)
    cfg = config(target("Lead", create_if_missing=True))
    await write(dest, sandbox, cfg, make_event(email="ada@example.com"), make_event(email="n@x.io"))
    leads = sandbox.records("Lead")
    assert leads[mine]["OwnerId"] == REP and leads[mine]["TS_Score__c"] == "hot"
    [created] = [r for r in leads.values() if r["Email"] == "n@x.io"]
    assert created.get("OwnerId") is None  # the rule did not run on the create either
    writes = [c for c in sandbox.calls if c.path.endswith("/composite/sobjects")]
    assert {(c.method, c.auto_assign) for c in writes} == {("PATCH", "FALSE"), ("POST", "FALSE")}


async def test_assign_on_create_lets_the_rule_run_for_creates_only(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    mine = lead(sandbox, "ada@example.com", OwnerId=REP)
    cfg = config(target("Lead", create_if_missing=True, assign_on_create=True))
    await write(dest, sandbox, cfg, make_event(email="ada@example.com"), make_event(email="n@x.io"))
    leads = sandbox.records("Lead")
    assert leads[mine]["OwnerId"] == REP  # an update never reassigns
    [created] = [r for r in leads.values() if r["Email"] == "n@x.io"]
    assert created["OwnerId"] == RULE_OWNER
    writes = {(c.method, c.auto_assign) for c in sandbox.calls if c.path.endswith("/sobjects")}
    assert writes == {("PATCH", "FALSE"), ("POST", "TRUE")}


async def test_propensity_alone_is_skipped_with_the_account_in_records(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    [account] = sandbox.seed("Account", {"Name": "AE", "Website": "analytical.example"})
    cfg = config(target("Lead"), propensity=PROPENSITY)
    [out] = await write(dest, sandbox, cfg, make_event(email="nobody@example.com"))
    assert (out.state, out.reason) == (DeliveryState.SKIPPED, "record_not_found")
    assert refs(out) == {("Account", account, "updated")}
    assert sandbox.records("Account")[account]["TS_Propensity__c"] == "high"


async def test_values_the_event_lacks_are_never_written_empty(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    mine = lead(sandbox, "ada@example.com", TS_Reasoning__c="kept", FirstName="Ada")
    [account] = sandbox.seed(
        "Account", {"Name": "AE", "Website": "analytical.example", "TS_Propensity__c": "low"}
    )
    cfg = config(target("Lead", create_if_missing=True), propensity=PROPENSITY)
    events = [
        make_event(email="ada@example.com", reasoning="", propensity=None),
        make_event(email="new@example.com", first_name="", reasoning="", propensity=None),
    ]
    outs = await write(dest, sandbox, cfg, *events)
    assert [o.state for o in outs] == [DeliveryState.DELIVERED] * 2
    leads = sandbox.records("Lead")
    assert (leads[mine]["TS_Reasoning__c"], leads[mine]["TS_Score__c"]) == ("kept", "hot")
    [new] = [r for r in leads.values() if r["Email"] == "new@example.com"]
    assert "FirstName" not in new or new["FirstName"] is None
    assert new.get("TS_Reasoning__c") is None
    assert sandbox.records("Account")[account]["TS_Propensity__c"] == "low"


async def test_lookups_skip_converted_leads(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    old = lead(sandbox, "ada@example.com")
    sandbox.store.convert(old)
    [out] = await write(dest, sandbox, config(target("Lead")), make_event(email="ada@example.com"))
    assert (out.state, out.reason) == (DeliveryState.SKIPPED, "record_not_found")
    [query] = [c.soql for c in sandbox.calls if c.soql]
    assert query.endswith("AND IsConverted = false")


async def test_a_converted_lead_is_followed_to_its_contact(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    old = lead(sandbox, "ada@example.com")
    contact = sandbox.store.convert(old)
    event = make_event(email="someone@else.io", crm_ids={"salesforce": {"Lead": old}})
    [out] = await write(dest, sandbox, config(target("Lead"), target("Contact")), event)
    assert out.state is DeliveryState.DELIVERED
    assert refs(out) == {("Contact", contact, "updated")}
    assert sandbox.records("Contact")[contact]["TS_Score__c"] == "hot"
    assert "TS_Score__c" not in sandbox.records("Lead")[old]


async def test_a_converted_lead_without_a_contact_target_is_skipped(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    old = lead(sandbox, "ada@example.com")
    contact = sandbox.store.convert(old)
    event = make_event(email="ada@example.com", crm_ids={"salesforce": {"Lead": old}})
    [out] = await write(dest, sandbox, config(target("Lead", create_if_missing=True)), event)
    assert (out.state, out.reason, out.records) == (DeliveryState.SKIPPED, "lead_converted", ())
    assert "TS_Score__c" not in sandbox.records("Contact")[contact]
    assert len(sandbox.records("Lead")) == 1  # no new Lead for a converted one


async def test_a_deleted_crm_id_falls_back_to_the_match_field(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    gone, current = lead(sandbox, "ada@example.com"), lead(sandbox, "ada@example.com")
    sandbox.store.records["Lead"].pop(gone)
    sandbox.store.deleted.add(gone)
    event = make_event(email="ada@example.com", crm_ids={"salesforce": {"Lead": gone}})
    [out] = await write(dest, sandbox, config(target("Lead")), event)
    assert out.state is DeliveryState.DELIVERED
    assert refs(out) == {("Lead", current, "updated")}
    assert sandbox.records("Lead")[current]["TS_Score__c"] == "hot"


async def test_re_evaluations_come_from_the_cache_until_the_record_goes(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    first, second = lead(sandbox, "ada@example.com"), lead(sandbox, "bob@example.com")
    cfg = config(target("Lead"))

    async def evaluate() -> list[Outcome]:
        return await write(
            dest,
            sandbox,
            cfg,
            make_event(email="ada@example.com"),
            make_event(email="bob@example.com"),
        )

    await evaluate()
    queries = sum(1 for c in sandbox.calls if c.soql)
    outs = await evaluate()  # re-evaluated: both ids come from the cache
    assert sum(1 for c in sandbox.calls if c.soql) == queries
    assert [refs(o) for o in outs] == [{("Lead", first, "updated")}, {("Lead", second, "updated")}]
    sandbox.store.records["Lead"].pop(first)
    sandbox.store.deleted.add(first)
    replacement = lead(sandbox, "ada@example.com")
    [out, _] = await evaluate()  # the cached record is gone: looked up again, same delivery
    assert refs(out) == {("Lead", replacement, "updated")}


async def test_a_converted_lead_with_no_contact_left_is_lead_converted(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    old = lead(sandbox, "ada@example.com")
    sandbox.store.convert(old)
    sandbox.store.records["Lead"][old]["ConvertedContactId"] = None  # converted to an Account only
    event = make_event(email="nobody@example.com", crm_ids={"salesforce": {"Lead": old}})
    [out] = await write(dest, sandbox, config(target("Lead"), target("Contact")), event)
    assert (out.state, out.reason) == (DeliveryState.SKIPPED, "lead_converted")
