"""Salesforce end to end: the real service (real destinations via build_all) on a real
broker, writing to the HTTPS sandbox. Statuses are read back from the status topic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devkit.factories import make_config, make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.salesforce import SalesforceSandbox

FIELDS = {
    "score": "TS_Score__c",
    "reasoning": "TS_Reasoning__c",
    "evaluated_at": "TS_Evaluated_At__c",
}
BY_EMAIL = {"crm_field": "Email", "event_field": "lead.email"}
PROPENSITY = {
    "enabled": True,
    "object": "Account",
    "match": {"crm_field": "Website", "event_field": "lead.domain"},
    "field": "TS_Propensity__c",
}


def lead_target(**extra: Any) -> dict[str, Any]:
    return {"object": "Lead", "match": BY_EMAIL, "fields": FIELDS, **extra}


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SalesforceSandbox]:
    tls = tmp_path / "tls"
    tls.mkdir()
    async with SalesforceSandbox(tls) as sb:
        yield sb


def harness(kafka: str, tmp_path: Path, sandbox: SalesforceSandbox, **env: str) -> ServiceHarness:
    return ServiceHarness(kafka, tmp_path, env={"DESTINATION_CA_FILE": str(sandbox.ca_file), **env})


async def connect(h: ServiceHarness, sandbox: SalesforceSandbox, org: str, **config: Any) -> None:
    h.write_secret(f"{org}-salesforce", sandbox.credentials())
    await h.put_config(make_config("salesforce", org, **config))


def records(status: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(r["object"], r["id"], r["action"]) for r in status["records"]}


def by_event(statuses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["event_id"]: s for s in statuses}


async def test_matching_creation_propensity_and_escaping(
    kafka_bootstrap: str, tmp_path: Path, sandbox: SalesforceSandbox
) -> None:
    nasty = "x' OR Name != '"
    [lead_a, lead_b, lead_nasty, decoy] = sandbox.seed(
        "Lead",
        {"LastName": "A", "Company": "C", "Email": "a@example.com"},
        {"LastName": "B", "Company": "C", "Email": "b@example.com"},
        {"LastName": "N", "Company": "C", "Email": nasty},
        {"LastName": "D", "Company": "C", "Email": "decoy@example.com"},
    )
    [site, by_id] = sandbox.seed(
        "Account", {"Name": "AE", "Website": "analytical.example"}, {"Name": "X"}
    )
    events = [
        make_event(email="a@example.com", score="warm"),
        make_event(
            email="b@example.com", crm_ids={"salesforce": {"Lead": lead_b, "Account": by_id}}
        ),
        make_event(email="new@example.com", domain="nowhere.example", last_name=None),
        make_event(email=nasty, propensity=None),
    ]
    skipped = make_event("org_2", email="nobody@example.com")
    async with harness(kafka_bootstrap, tmp_path, sandbox) as h:
        targets = [lead_target(create_if_missing=True), {**lead_target(), "object": "Contact"}]
        await connect(h, sandbox, "org_1", targets=targets, propensity=PROPENSITY)
        await connect(h, sandbox, "org_2", targets=[lead_target()])
        for event in [*events, skipped]:
            await h.send_event(event)
        statuses = by_event(await h.wait_statuses(5))
        unmatched = h.metric("propensity_unmatched_total", destination="salesforce")
        usage = h.metric("api_usage_ratio", destination="salesforce")
    a, b, c, d = (statuses[e["event_id"]] for e in events)
    assert {s["status"] for s in (a, b, c, d)} == {"delivered"}
    assert records(a) == {("Lead", lead_a, "updated"), ("Account", site, "updated")}
    assert records(b) == {("Lead", lead_b, "updated"), ("Account", by_id, "updated")}
    [(obj, created, action)] = records(c)
    assert (obj, action) == ("Lead", "created")
    assert records(d) == {("Lead", lead_nasty, "updated")}
    assert statuses[skipped["event_id"]]["status"] == "skipped"
    assert statuses[skipped["event_id"]]["reason"] == "record_not_found"
    stored = sandbox.records("Lead")
    assert stored[lead_a]["TS_Score__c"] == "warm" and stored[lead_nasty]["TS_Score__c"] == "hot"
    assert (stored[created]["LastName"], stored[created]["Company"]) == (
        "new",
        "Analytical Engines Ltd",
    )
    assert "TS_Score__c" not in stored[decoy]
    accounts = sandbox.records("Account")
    assert accounts[site]["TS_Propensity__c"] == "high" and len(accounts) == 2
    assert unmatched == 1 and usage > 0


async def test_a_thousand_events_take_at_most_ten_collection_calls(
    kafka_bootstrap: str, tmp_path: Path, sandbox: SalesforceSandbox
) -> None:
    sandbox.seed(
        "Lead",
        *[{"LastName": "L", "Company": "C", "Email": f"b{i}@x.example"} for i in range(1000)],
    )
    events = [make_event(email=f"b{i}@x.example") for i in range(1000)]
    async with harness(kafka_bootstrap, tmp_path, sandbox, BATCH_LINGER_MS="1000") as h:
        await connect(h, sandbox, "org_1", targets=[lead_target()])
        topic = h.settings.topic_evaluations
        sends = [
            await h.producer.send(topic, orjson.dumps(e), f"org_1:{e['lead']['lead_id']}".encode())
            for e in events
        ]
        await asyncio.gather(*sends)
        statuses = await h.wait_statuses(1000, timeout=60)
    assert {s["status"] for s in statuses} == {"delivered"}
    collections = [c for c in sandbox.calls if c.path.endswith("/composite/sobjects")]
    assert len(collections) <= 10 and all(0 < c.records <= 200 for c in collections)
    assert len([c for c in sandbox.calls if c.soql]) == len(collections)  # one lookup per batch
    assert sum(r.get("TS_Score__c") == "hot" for r in sandbox.records("Lead").values()) == 1000


async def test_error_classes_and_their_statuses(
    kafka_bootstrap: str, tmp_path: Path, sandbox: SalesforceSandbox
) -> None:
    [ok, rejected, deleted, flaky, locked] = sandbox.seed(
        "Lead", *[{"LastName": "L", "Company": "C", "Email": f"e{i}@x.example"} for i in range(5)]
    )
    sandbox.store.records["Lead"].pop(deleted)
    sandbox.store.deleted.add(deleted)
    rule = "Leads from e1@ cannot be scored"
    sandbox.store.rules.append(
        lambda obj, rec: rule if rec.get("Email") == "e1@x.example" else None
    )
    first = [
        make_event(email="e0@x.example", reasoning="r" * 131_073),
        make_event(email="e1@x.example"),
        make_event(crm_ids={"salesforce": {"Lead": deleted}}),
        make_event("org_3", email="e0@x.example"),
    ]
    sandbox.seed("Contact", {"LastName": "C", "Email": "e0@x.example"})
    sandbox.store.fields["Contact"]["TS_Score__c"] = 2  # a customer field too short for "hot"
    first.append(make_event("org_5", email="e0@x.example"))
    async with harness(kafka_bootstrap, tmp_path, sandbox, DESTINATION_TIMEOUT_S="1") as h:
        await connect(h, sandbox, "org_1", targets=[lead_target()])
        await connect(h, sandbox, "org_5", targets=[{**lead_target(), "object": "Contact"}])
        bad = lead_target(fields={**FIELDS, "score": "TS_Nope__c"})
        await connect(h, sandbox, "org_3", targets=[bad])
        for event in first:
            await h.send_event(event)
        done = by_event(await h.wait_statuses(5))
        truncated, invalid, gone, unknown, too_long = (done[e["event_id"]] for e in first)
        assert truncated["status"] == "delivered"
        assert len(sandbox.records("Lead")[ok]["TS_Reasoning__c"]) == 131_072
        assert h.metric("truncations_total", destination="salesforce", field="reasoning") == 1
        assert (invalid["status"], invalid["error"]["code"]) == (
            "failed",
            "field_custom_validation_exception",
        )
        assert rule in invalid["error"]["message"] and invalid["error"]["retryable"] is False
        # A deleted crm id falls back to matching by email (issue 14); nobody has this one.
        assert (gone["status"], gone["reason"]) == ("skipped", "record_not_found")
        assert (unknown["status"], unknown["error"]["code"]) == ("failed", "invalid_field")
        assert "No such column 'TS_Nope__c'" in unknown["error"]["message"]
        assert "TS_Score__c" not in sandbox.records("Lead")[rejected]
        assert (too_long["status"], too_long["error"]["code"]) == ("failed", "string_too_long")
        assert "max length=2" in too_long["error"]["message"]

        sandbox.latency_s = 1.5  # slower than DESTINATION_TIMEOUT_S: a timeout, then a retry
        slow = make_event(email="e0@x.example")
        await h.send_event(slow)
        await h.wait_until(lambda: _trail(h, slow), 30, "timeout status")
        sandbox.latency_s = 0
        await h.wait_until(lambda: _final(h, slow), 30, "delivery after timeout")
        assert _trail(h, slow)[0]["error"]["code"] == "timeout"
        assert _trail(h, slow)[-1]["status"] == "delivered"

        sandbox.fail(503, times=1)  # a 5xx: retried with backoff, then delivered
        outage = make_event(email="e3@x.example")
        await h.send_event(outage)
        await h.wait_until(lambda: _final(h, outage), 30, "5xx retry")
        trail = _trail(h, outage)
        assert [s["status"] for s in trail] == ["retrying", "delivered"]
        assert trail[0]["error"]["http_status"] == 503 and trail[-1]["attempts"] == 2
        assert "TS_Score__c" in sandbox.records("Lead")[flaky]

        sandbox.store.locked.add(locked)  # UNABLE_TO_LOCK_ROW: retried until the lock is gone
        busy = make_event(email="e4@x.example")
        await h.send_event(busy)
        await h.wait_until(lambda: _trail(h, busy), 30, "lock retry")
        assert _trail(h, busy)[0]["error"]["code"] == "unable_to_lock_row"
        sandbox.store.locked.clear()
        await h.wait_until(lambda: _final(h, busy), 30, "lock released")
        assert _trail(h, busy)[-1]["status"] == "delivered"

        await connect(h, sandbox, "org_4", targets=[lead_target()])
        sandbox.fail(403, times=1)  # TotalRequests: the lane parks, attempts are not spent
        limited = make_event("org_4", email="e0@x.example")
        await h.send_event(limited)
        await h.wait_until(lambda: _trail(h, limited), 30, "limit status")
        [parked] = _trail(h, limited)
        assert parked["status"] == "retrying"
        assert (parked["error"]["code"], parked["error"]["http_status"]) == (
            "request_limit_exceeded",
            403,
        )
        assert h.metric("destination_rate_limited_total", destination="salesforce") == 1


async def test_auth_failure_then_secret_rotation(
    kafka_bootstrap: str, tmp_path: Path, sandbox: SalesforceSandbox
) -> None:
    sandbox.seed("Lead", {"LastName": "L", "Company": "C", "Email": "auth@x.example"})
    async with harness(kafka_bootstrap, tmp_path, sandbox) as h:
        await connect(h, sandbox, "org_1", targets=[lead_target()])
        old_token = sandbox.token
        sandbox.token = "00DSANDBOX0000001!rotated.by.the.customer"  # the stored token is revoked
        refused = make_event(email="auth@x.example")
        await h.send_event(refused)
        [failed] = await h.wait_statuses(1)
        assert (failed["status"], failed["error"]["code"]) == ("failed", "auth_failed")
        assert failed["error"]["retryable"] is False and failed["error"]["http_status"] == 401
        assert old_token not in orjson.dumps(failed).decode()
        h.write_secret("org_1-salesforce", sandbox.credentials())  # the secret file is rotated
        after = make_event(email="auth@x.example")
        await h.send_event(after)
        await h.wait_until(lambda: _final(h, after), 30, "delivery after rotation")
        assert _trail(h, after)[-1]["status"] == "delivered"
        assert old_token not in h.metrics_text()


def _trail(h: ServiceHarness, event: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in h.statuses if s["event_id"] == event["event_id"]]


def _final(h: ServiceHarness, event: dict[str, Any]) -> bool:
    return any(s["status"] != "retrying" for s in _trail(h, event))
