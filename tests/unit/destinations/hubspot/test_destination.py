"""The HubSpot destination against the HTTPS sandbox: matching, creation,
propensity, batching, dedupe, truncation, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.factories import make_event
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import batch, destination, hubspot_config, metric
from service.errors import AuthFailed
from service.metrics import Metrics

COMPANIES = {
    "object": "companies",
    "match": {"crm_field": "domain", "event_field": "lead.domain"},
    "fields": {"score": "ts_score"},
    "create_if_missing": True,
}


async def test_upsert_by_email_creates_then_updates(hs: HubSpotSandbox, dest) -> None:
    event = make_event(email="Ada@Example.com", score="warm")
    (first,) = await dest.write(batch(hs, hubspot_config(propensity=False), [event]))
    assert first.state == "delivered" and first.records[0].action == "created"
    rec = hs.find("contacts", "email", "ada@example.com")
    assert rec is not None and first.records[0].id == rec.id
    assert rec.properties["ts_score"] == "warm"
    assert rec.properties["ts_evaluated_at"].startswith(event["evaluation"]["evaluated_at"][:19])
    assert (rec.properties["firstname"], rec.properties["company"]) == (
        "Ada",
        "Analytical Engines Ltd",
    )
    again = make_event(email="ada@example.com", score="cold")
    (second,) = await dest.write(batch(hs, hubspot_config(propensity=False), [again]))
    assert second.records[0].action == "updated" and second.records[0].id == rec.id
    assert rec.properties["ts_score"] == "cold" and len(hs.records("contacts")) == 1
    assert hs.count("/contacts/batch/upsert") == 2 and len(hs.calls) == 2


async def test_company_propensity_by_domain_and_a_counted_miss(hs: HubSpotSandbox) -> None:
    metrics = Metrics()
    dest = destination(hs, metrics)
    cid = hs.seed("companies", name="Analytical", domain="Analytical.Example")
    hit = make_event(domain="analytical.example", propensity="low")
    miss = make_event(domain="unknown.example")
    try:
        out = await dest.write(batch(hs, hubspot_config(), [hit, miss]))
    finally:
        await dest.close()
    assert {(r.object, r.id, r.action) for r in out[0].records} >= {("companies", cid, "updated")}
    assert out[1].state == "delivered" and [r.object for r in out[1].records] == ["contacts"]
    assert hs.store.records["companies"][cid].properties["ts_propensity"] == "low"
    assert len(hs.records("companies")) == 1  # never created for propensity
    assert metric(metrics, "propensity_unmatched_total", destination="hubspot") == 1
    assert hs.count("/companies/search") == 1


async def test_propensity_by_crm_id_skips_the_search(hs: HubSpotSandbox, dest) -> None:
    cid = hs.seed("companies", name="Known", domain="known.example")
    event = make_event(crm_ids={"hubspot": {"companies": cid}}, propensity="high")
    (out,) = await dest.write(batch(hs, hubspot_config(), [event]))
    assert ("companies", cid) in {(r.object, r.id) for r in out.records}
    assert hs.count("/search") == 0


async def test_create_off_updates_existing_contacts_only(hs: HubSpotSandbox, dest) -> None:
    known = hs.seed("contacts", email="known@example.com")
    config = hubspot_config(contacts={"create_if_missing": False}, propensity=False)
    events = [make_event(email="known@example.com"), make_event(email="new@example.com")]
    updated, missing = await dest.write(batch(hs, config, events))
    assert updated.records[0].id == known and updated.records[0].action == "updated"
    assert missing.state == "skipped" and missing.reason == "record_not_found"
    assert len(hs.records("contacts")) == 1
    assert hs.count("/contacts/batch/update") == 1 and hs.count("/upsert") == 0


async def test_companies_created_only_when_create_is_on(hs: HubSpotSandbox, dest) -> None:
    events = [make_event(domain="fresh.example", company="Fresh Ltd", propensity=None)]
    off = hubspot_config(targets=[{**COMPANIES, "create_if_missing": False}], propensity=False)
    (skipped,) = await dest.write(batch(hs, off, events))
    assert skipped.reason == "record_not_found" and not hs.records("companies")
    on = hubspot_config(targets=[COMPANIES], propensity=False)
    (created,) = await dest.write(batch(hs, on, events))
    (rec,) = hs.records("companies")
    assert created.records[0].action == "created" and created.records[0].id == rec.id
    assert rec.properties["name"] == "Fresh Ltd" and rec.properties["domain"] == "fresh.example"
    assert hs.count("/companies/batch/create") == 1


async def test_search_lag_does_not_create_duplicates(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path, search_lag_s=60) as hs:
        dest = destination(hs)
        config = hubspot_config(targets=[COMPANIES], propensity=False)
        try:
            for _ in range(2):
                (out,) = await dest.write(batch(hs, config, [make_event(domain="lag.example")]))
                assert out.state == "delivered"
        finally:
            await dest.close()
        assert len(hs.records("companies")) == 1  # the second write updated the first company


async def test_1000_contact_events_take_10_upserts(hs: HubSpotSandbox, dest) -> None:
    events = [make_event() for _ in range(1000)]
    out = await dest.write(batch(hs, hubspot_config(propensity=False), events))
    assert all(o.state == "delivered" for o in out)
    upserts = [c for c in hs.calls if c.path.endswith("/batch/upsert")]
    assert len(upserts) == 10 and all(c.inputs == 100 for c in upserts)
    assert len(hs.records("contacts")) == 1000


async def test_newest_evaluation_per_record_wins_in_a_batch(hs: HubSpotSandbox, dest) -> None:
    cid = hs.seed("companies", name="Shared", domain="shared.example")
    older = make_event(email="twin@example.com", score="cold", domain="shared.example")
    newer = make_event(email="twin@example.com", score="hot", domain="shared.example")
    colleagues = [make_event(domain="shared.example", propensity="low") for _ in range(3)]
    out = await dest.write(batch(hs, hubspot_config(), [newer, older, *colleagues]))
    assert out[1].state == "skipped" and out[1].reason == "stale_evaluation"
    assert out[0].state == "delivered"
    assert hs.find("contacts", "email", "twin@example.com").properties["ts_score"] == "hot"
    # one company update for five leads (HubSpot refuses duplicate ids in a batch)
    assert hs.count("/companies/batch/update") == 1
    assert hs.store.records["companies"][cid].properties["ts_propensity"] == "low"


async def test_crm_id_update_and_a_deleted_record(hs: HubSpotSandbox, dest) -> None:
    alive = hs.seed("contacts", email="alive@example.com")
    events = [
        make_event(crm_ids={"hubspot": {"contacts": alive}}),
        make_event(crm_ids={"hubspot": {"contacts": "99999"}}),
    ]
    ok, gone = await dest.write(batch(hs, hubspot_config(propensity=False), events))
    assert ok.records[0].id == alive and ok.records[0].action == "updated"
    # The crm id no longer resolves: matched by email instead (create is on: upserted).
    made = hs.find("contacts", "email", events[1]["lead"]["email"])
    assert made is not None and gone.state == "delivered"
    assert [(r.id, r.action) for r in gone.records] == [(made.id, "created")]
    assert hs.count("/contacts/batch/update") == 1 and hs.count("/contacts/batch/upsert") == 1


async def test_truncated_reasoning_is_written_and_counted(hs: HubSpotSandbox) -> None:
    metrics = Metrics()
    dest = destination(hs, metrics)
    try:
        (out,) = await dest.write(
            batch(hs, hubspot_config(propensity=False), [make_event(reasoning="r" * 100_000)])
        )
    finally:
        await dest.close()
    assert out.state == "delivered"  # the sandbox refuses text over 65,536 characters
    (rec,) = hs.records("contacts")
    assert len(rec.properties["ts_reasoning"]) == 65_536
    assert metric(metrics, "truncations_total", destination="hubspot", field="reasoning") == 1


async def test_date_property_type_is_written_as_a_date(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path, properties={"contacts": {"ts_day": "date"}}) as hs:
        dest = destination(hs)
        day = {"fields": {"evaluated_at": "ts_day"}, "field_types": {"evaluated_at": "date"}}
        config = hubspot_config(contacts=day, propensity=False)
        try:
            event = make_event(evaluated_at="2026-11-22T10:14:59Z")
            (out,) = await dest.write(batch(hs, config, [event]))
        finally:
            await dest.close()
        assert out.state == "delivered"
        assert hs.records("contacts")[0].properties["ts_day"] == "2026-11-22"


async def test_auth_failure_fails_the_batch_without_leaking_the_token(
    hs: HubSpotSandbox, dest
) -> None:
    bad = "pat-na1-wrong-token-0000-1111-2222"
    with pytest.raises(AuthFailed) as caught:
        await dest.write(batch(hs, hubspot_config(), [make_event()], access_token=bad))
    assert caught.value.code == "auth_failed" and caught.value.http_status == 401
    assert bad not in caught.value.message and hs.token not in caught.value.message
    assert not hs.records("contacts")


async def test_server_errors_and_timeouts_retry_per_request(hs: HubSpotSandbox) -> None:
    dest = destination(hs, timeout_s=0.5)
    cid = hs.seed("companies", name="Slow", domain="slow.example")
    hs.inject(502, path="/contacts/batch/upsert")
    hs.inject(200, path="/companies/batch/update", delay_s=2.0)
    try:
        (out,) = await dest.write(batch(hs, hubspot_config(), [make_event(domain="slow.example")]))
    finally:
        await dest.close()
    assert out.state == "retrying" and out.error.retryable
    assert out.error.code in {"server_error", "timeout"}
    assert cid and hs.count("/companies/search") == 1


async def test_a_refused_search_fails_the_writes_that_needed_it(hs: HubSpotSandbox, dest) -> None:
    config = hubspot_config()
    config["propensity"] = {
        **config["propensity"],
        "match": {"crm_field": "no_such_property", "event_field": "lead.domain"},
    }
    (out,) = await dest.write(batch(hs, config, [make_event()]))
    assert out.state == "failed" and out.error.code == "rejected" and out.error.http_status == 400
    assert "no_such_property" in out.error.message
    assert len(hs.records("contacts")) == 1  # the contact itself was written
