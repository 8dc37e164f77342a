"""What a real customer's HubSpot account adds (issue 14), against the HTTPS sandbox:
the status following the targets, no blanked properties, merged contacts, and
the record-id cache for company searches."""

from __future__ import annotations

from devkit.factories import make_event
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import batch, hubspot_config
from service.destinations.hubspot import HubSpotDestination
from service.models import DeliveryState

COMPANIES = {
    "object": "companies",
    "match": {"crm_field": "domain", "event_field": "lead.domain"},
    "fields": {"score": "ts_score"},
    "create_if_missing": False,
}


async def test_propensity_alone_is_skipped_with_the_company_in_records(
    hs: HubSpotSandbox, dest: HubSpotDestination
) -> None:
    company = hs.seed("companies", name="AE", domain="analytical.example")
    cfg = hubspot_config(contacts={"create_if_missing": False})
    [out] = await dest.write(batch(hs, cfg, [make_event(email="nobody@example.com")]))
    assert (out.state, out.reason) == (DeliveryState.SKIPPED, "record_not_found")
    assert [(r.object, r.id, r.action) for r in out.records] == [("companies", company, "updated")]
    assert hs.store.records["companies"][company].properties["ts_propensity"] == "high"


async def test_values_the_event_lacks_are_never_written_empty(
    hs: HubSpotSandbox, dest: HubSpotDestination
) -> None:
    known = hs.seed("contacts", email="ada@example.com", firstname="Ada", ts_reasoning="kept")
    company = hs.seed("companies", name="AE", domain="analytical.example", ts_propensity="low")
    events = [
        make_event(email="ada@example.com", reasoning="", propensity=None),
        make_event(
            email="new@example.com", first_name="", last_name=None, reasoning="", domain="o.io"
        ),
    ]
    outs = await dest.write(batch(hs, hubspot_config(), events))
    assert [o.state for o in outs] == [DeliveryState.DELIVERED] * 2
    props = hs.store.records["contacts"][known].properties
    assert (props["ts_reasoning"], props["firstname"], props["ts_score"]) == ("kept", "Ada", "hot")
    new = hs.find("contacts", "email", "new@example.com")
    assert new is not None
    assert {"firstname", "lastname", "ts_reasoning"}.isdisjoint(new.properties)
    assert hs.store.records["companies"][company].properties["ts_propensity"] == "low"


async def test_a_merged_contact_falls_back_to_the_email(
    hs: HubSpotSandbox, dest: HubSpotDestination
) -> None:
    primary = hs.seed("contacts", email="ada@example.com")
    secondary = hs.seed("contacts", email="ada.old@example.com")
    hs.store.merge("contacts", primary, secondary)
    event = make_event(email="ada@example.com", crm_ids={"hubspot": {"contacts": secondary}})
    cfg = hubspot_config(contacts={"create_if_missing": False}, propensity=False)
    [out] = await dest.write(batch(hs, cfg, [event]))
    assert out.state is DeliveryState.DELIVERED
    assert [(r.object, r.id, r.action) for r in out.records] == [("contacts", primary, "updated")]
    assert hs.store.records["contacts"][primary].properties["ts_score"] == "hot"


async def test_company_searches_come_from_the_cache_until_the_company_goes(
    hs: HubSpotSandbox, dest: HubSpotDestination
) -> None:
    first = hs.seed("companies", name="AE", domain="analytical.example")
    cfg = hubspot_config(targets=[COMPANIES], propensity=False)

    async def evaluate() -> str:
        [out] = await dest.write(batch(hs, cfg, [make_event(domain="analytical.example")]))
        assert out.state is DeliveryState.DELIVERED
        return out.records[0].id

    assert await evaluate() == first
    assert await evaluate() == first  # re-evaluated: no second search
    assert hs.count("/companies/search") == 1
    hs.store.remove("companies", first)
    second = hs.seed("companies", name="AE2", domain="analytical.example")
    assert await evaluate() == second  # the cached company is gone: searched again
    assert hs.count("/companies/search") == 2
