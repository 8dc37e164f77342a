"""What a real customer's Airtable base adds (issue 14), against the HTTPS sandbox:
the status following the targets, no blanked cells, deleted records, and the
record-id cache for lookups."""

from __future__ import annotations

from typing import Any

from devkit.factories import DEFAULT_TARGETS, make_batch, make_config, make_event
from devkit.sandboxes.airtable import AirtableSandbox
from service.destinations.airtable import AirtableDestination
from service.destinations.base import Outcome
from service.models import DeliveryState

LOOKUP_ONLY = {**DEFAULT_TARGETS["airtable"][0], "create_if_missing": False}
COMPANIES = {
    "object": "Companies",
    "match": {"crm_field": "Domain", "event_field": "lead.domain"},
    "fields": {"score": "TS Score"},
}


async def write(
    d: AirtableDestination, sb: AirtableSandbox, targets: list[dict[str, Any]], *events: Any
) -> list[Outcome]:
    config = make_config("airtable", targets=targets)
    return await d.write(make_batch(config, list(events), sb.credentials()))


def lists(sandbox: AirtableSandbox) -> int:
    return len([h for h in sandbox.calls("GET")])


async def test_nothing_matched_is_skipped_and_any_target_delivers(
    sandbox: AirtableSandbox, dest: AirtableDestination
) -> None:
    # Airtable has no propensity: every target carries the score, so a Companies
    # row written is a target written, and only a miss everywhere is skipped.
    [company] = sandbox.seed("Companies", [{"Domain": "analytical.example"}])
    miss, hit = await write(
        dest,
        sandbox,
        [LOOKUP_ONLY, COMPANIES],
        make_event(email="nobody@example.com", domain="nowhere.example"),
        make_event(email="nobody@example.com"),
    )
    assert (miss.state, miss.reason, miss.records) == (
        DeliveryState.SKIPPED,
        "record_not_found",
        (),
    )
    assert hit.state is DeliveryState.DELIVERED
    assert [(r.object, r.id) for r in hit.records] == [("Companies", company)]


async def test_values_the_event_lacks_are_never_written_empty(
    sandbox: AirtableSandbox, dest: AirtableDestination
) -> None:
    [known] = sandbox.seed(
        "Contacts", [{"Email": "ada@example.com", "TS Reasoning": "kept", "First Name": "Ada"}]
    )
    events = [
        make_event(email="ada@example.com", first_name="", reasoning=""),
        make_event(email="new@example.com", first_name="", reasoning=""),
    ]
    outs = await write(dest, sandbox, [DEFAULT_TARGETS["airtable"][0]], *events)
    assert [o.state for o in outs] == [DeliveryState.DELIVERED] * 2
    rows = {r["fields"]["Email"]: r for r in sandbox.table("Contacts")}
    kept = rows["ada@example.com"]
    assert kept["id"] == known
    assert (kept["fields"]["TS Reasoning"], kept["fields"]["First Name"]) == ("kept", "Ada")
    assert {"First Name", "TS Reasoning"}.isdisjoint(rows["new@example.com"]["fields"])


async def test_a_deleted_record_falls_back_to_the_match_column(
    sandbox: AirtableSandbox, dest: AirtableDestination
) -> None:
    [current] = sandbox.seed("Contacts", [{"Email": "ada@example.com"}])
    event = make_event(
        email="ada@example.com", crm_ids={"airtable": {"Contacts": "recGONE00000000"}}
    )
    [out] = await write(dest, sandbox, [LOOKUP_ONLY], event)
    assert out.state is DeliveryState.DELIVERED
    assert [(r.id, r.action) for r in out.records] == [(current, "updated")]
    assert sandbox.table("Contacts")[0]["fields"]["TS Score"] == "hot"


async def test_lookups_come_from_the_cache_until_the_record_goes(
    sandbox: AirtableSandbox, dest: AirtableDestination
) -> None:
    [first] = sandbox.seed("Contacts", [{"Email": "ada@example.com"}])

    async def evaluate() -> str:
        [out] = await write(dest, sandbox, [LOOKUP_ONLY], make_event(email="ada@example.com"))
        assert out.state is DeliveryState.DELIVERED
        return out.records[0].id

    assert await evaluate() == first
    assert await evaluate() == first
    assert lists(sandbox) == 1  # the re-evaluation was not looked up again
    sandbox.records[sandbox.base_id]["Contacts"].pop(first)
    [second] = sandbox.seed("Contacts", [{"Email": "ada@example.com"}])
    assert await evaluate() == second  # gone from the cache and looked up, same write
    assert lists(sandbox) == 2
