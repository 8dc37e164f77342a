"""The Airtable destination against the HTTPS sandbox: mapping, matching, creation,
errors and truncation, one `write` per batch as the pipeline calls it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from devkit.factories import DEFAULT_TARGETS, make_batch, make_config, make_event
from devkit.sandboxes.airtable import AirtableSandbox, Column
from service.destinations.airtable import AirtableDestination
from service.destinations.base import DestinationContext, Outcome
from service.errors import AuthFailed, Forbidden, TransientError
from service.metrics import Metrics
from service.models import DeliveryState
from service.settings import Settings

FAST = {"requests_per_second": 500, "window_s": 1.0}


def make_destination(sandbox: AirtableSandbox, **options: Any) -> AirtableDestination:
    settings = Settings(
        bootstrap_servers="unused:9092",
        destination_ca_file=sandbox.ca_file,
        destination_timeout_s=5.0,
    )
    ctx = DestinationContext(settings=settings, metrics=Metrics(), options={"airtable": options})
    return AirtableDestination(ctx)


@asynccontextmanager
async def opened(sandbox: AirtableSandbox, **options: Any) -> AsyncIterator[AirtableDestination]:
    dest = make_destination(sandbox, **options)
    await dest.setup()
    try:
        yield dest
    finally:
        await dest.close()


def target(**overrides: Any) -> dict[str, Any]:
    return {**DEFAULT_TARGETS["airtable"][0], **overrides}


async def write(
    dest: AirtableDestination,
    sandbox: AirtableSandbox,
    events: list[dict[str, Any]],
    targets: list[dict[str, Any]] | None = None,
    credentials: dict[str, Any] | None = None,
) -> list[Outcome]:
    config = make_config("airtable", targets=targets or [target()])
    return await dest.write(make_batch(config, events, credentials or sandbox.credentials()))


def by_email(sandbox: AirtableSandbox, table: str = "Contacts") -> dict[str, dict[str, Any]]:
    return {r["fields"].get("Email"): r for r in sandbox.table(table)}


async def test_upsert_creates_then_updates_with_mapped_and_create_fields(
    dest: AirtableDestination, sandbox: AirtableSandbox
) -> None:
    first = make_event(lead_id="ada", score="warm", reasoning="Read the docs.")
    [created] = await write(dest, sandbox, [first])
    assert created.state is DeliveryState.DELIVERED
    [ref] = created.records
    assert (ref.object, ref.action) == ("Contacts", "created")
    row = by_email(sandbox)["ada@example.com"]
    assert row["id"] == ref.id
    assert row["fields"] == {
        "Email": "ada@example.com",
        "First Name": "Ada",
        "TS Score": "warm",
        "TS Reasoning": "Read the docs.",
        "TS Evaluated At": first["evaluation"]["evaluated_at"],
    }
    second = make_event(lead_id="ada", score="hot")
    [updated] = await write(dest, sandbox, [second])
    assert [(r.id, r.action) for r in updated.records] == [(ref.id, "updated")]
    assert len(sandbox.table("Contacts")) == 1
    assert by_email(sandbox)["ada@example.com"]["fields"]["TS Score"] == "hot"
    upserts = [h for h in sandbox.calls("PATCH") if h.status == 200]
    assert len(upserts) == 2


async def test_without_create_records_are_looked_up_and_misses_are_skipped(
    dest: AirtableDestination, sandbox: AirtableSandbox
) -> None:
    [known] = sandbox.seed("Contacts", [{"Email": "known@example.com", "Last Name": "K"}])
    events = [make_event(lead_id="known"), make_event(lead_id="stranger")]
    outcomes = await write(dest, sandbox, events, [target(create_if_missing=False)])
    assert outcomes[0].state is DeliveryState.DELIVERED
    assert [(r.id, r.action) for r in outcomes[0].records] == [(known, "updated")]
    assert outcomes[1].state is DeliveryState.SKIPPED
    assert outcomes[1].reason == "record_not_found"
    rows = by_email(sandbox)
    assert set(rows) == {"known@example.com"}  # nothing created
    assert rows["known@example.com"]["fields"]["Last Name"] == "K"  # PATCH keeps other cells
    assert rows["known@example.com"]["fields"]["TS Score"] == "hot"
    assert [h.method for h in sandbox.hits] == ["GET", "PATCH"]  # one lookup, one update


async def test_crm_id_updates_by_id_and_a_deleted_record_falls_back_to_the_email(
    dest: AirtableDestination, sandbox: AirtableSandbox
) -> None:
    [rec] = sandbox.seed("Contacts", [{"Email": "someone-else@example.com"}])
    by_id = make_event(lead_id="x", crm_ids={"airtable": {"Contacts": rec}})
    gone = make_event(lead_id="y", crm_ids={"airtable": {"Contacts": "recDELETED0000000"}})
    outcomes = await write(dest, sandbox, [by_id, gone])
    assert [(r.id, r.action) for r in outcomes[0].records] == [(rec, "updated")]
    assert sandbox.table("Contacts")[0]["fields"]["Email"] == "someone-else@example.com"
    # The crm id's record is gone: matched on the Email column (create on: upserted).
    [made] = [r for r in sandbox.table("Contacts") if r["id"] != rec]
    assert made["fields"]["Email"] == "y@example.com"
    assert outcomes[1].state is DeliveryState.DELIVERED
    assert [(r.id, r.action) for r in outcomes[1].records] == [(made["id"], "created")]


async def test_formula_escaping_finds_an_email_with_quote_and_brace(
    dest: AirtableDestination, sandbox: AirtableSandbox
) -> None:
    odd = "o'brien}{x}\\@example.com"
    [rec] = sandbox.seed("Contacts", [{"Email": odd}, {"Email": "obrien@example.com"}])[:1]
    events = [make_event(lead_id="odd", email=odd)]
    [outcome] = await write(dest, sandbox, events, [target(create_if_missing=False)])
    assert [r.id for r in outcome.records] == [rec]
    assert by_email(sandbox)["obrien@example.com"]["fields"].get("TS Score") is None


async def test_a_422_splits_the_batch_and_fails_only_the_bad_record(
    tmp_path: Path,
) -> None:
    hot_warm = Column("singleSelect", ("hot", "warm"))  # no "cold" option in this base
    tables = {"Contacts": {"Email": Column("email"), "TS Score": hot_warm}}
    events = [make_event(lead_id=f"l{i}", score="cold" if i == 6 else "hot") for i in range(10)]
    only_score = target(fields={"score": "TS Score"}, create_fields={})
    async with (
        AirtableSandbox(tmp_path, rate_limit=1000, tables=tables) as sandbox,
        opened(sandbox, **FAST) as dest,
    ):
        outcomes = await write(dest, sandbox, events, [only_score])
    states = [o.state for o in outcomes]
    assert states[6] is DeliveryState.FAILED
    assert states[:6] + states[7:] == [DeliveryState.DELIVERED] * 9
    error = outcomes[6].error
    assert error is not None and error.code == "invalid_value"  # contract §4a
    assert error.message.startswith("Airtable refused 'cold' for Contacts.TS Score: ")
    assert "select option" in error.message and error.retryable is False
    assert len(sandbox.table("Contacts")) == 9
    # Halves until the bad record is alone: 4 refused requests, not one per record.
    assert [h.records for h in sandbox.calls(status=422)] == [10, 5, 2, 1]
    assert [h.records for h in sandbox.calls(status=200)] == [5, 1, 3]


async def test_an_unknown_column_fails_every_item_without_splitting(
    dest: AirtableDestination, sandbox: AirtableSandbox
) -> None:
    events = [make_event(lead_id=f"u{i}") for i in range(10)]
    wrong = target(fields={"score": "TS Scor"})
    outcomes = await write(dest, sandbox, events, [wrong])
    assert {o.state for o in outcomes} == {DeliveryState.FAILED}
    assert {o.error.code for o in outcomes if o.error} == {"unknown_field_name"}
    assert len(sandbox.hits) == 1


async def test_an_unknown_table_fails_its_items(
    dest: AirtableDestination, sandbox: AirtableSandbox
) -> None:
    outcomes = await write(dest, sandbox, [make_event()], [target(object="Leads")])
    assert outcomes[0].state is DeliveryState.FAILED
    assert outcomes[0].error is not None and outcomes[0].error.code == "table_not_found"
    assert outcomes[0].error.http_status == 404


async def test_two_targets_combine_into_one_outcome(
    dest: AirtableDestination, sandbox: AirtableSandbox
) -> None:
    companies = {
        "object": "Companies",
        "match": {"crm_field": "Domain", "event_field": "lead.domain"},
        "fields": {"score": "TS Score"},
        "create_if_missing": False,
    }
    [company] = sandbox.seed("Companies", [{"Domain": "analytical.example"}])
    outcomes = await write(dest, sandbox, [make_event(lead_id="two")], [target(), companies])
    refs = [(r.object, r.action) for r in outcomes[0].records]
    assert refs == [("Contacts", "created"), ("Companies", "updated")]
    assert outcomes[0].records[1].id == company


async def test_truncation_writes_100k_characters_and_counts_it(
    dest: AirtableDestination, sandbox: AirtableSandbox
) -> None:
    long = "r" * 150_000
    [outcome] = await write(dest, sandbox, [make_event(lead_id="long", reasoning=long)])
    assert outcome.state is DeliveryState.DELIVERED
    stored = by_email(sandbox)["long@example.com"]["fields"]["TS Reasoning"]
    assert stored == "r" * 100_000
    counter = dest._metrics.truncations.labels("airtable", "reasoning")
    assert counter._value.get() == 1


@pytest.mark.parametrize(
    ("status", "kind", "raised"),
    [
        (401, "AUTHENTICATION_REQUIRED", AuthFailed),
        (403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", Forbidden),
        (503, "SERVICE_UNAVAILABLE", TransientError),
    ],
)
async def test_whole_batch_errors_are_raised(
    dest: AirtableDestination,
    sandbox: AirtableSandbox,
    status: int,
    kind: str,
    raised: type[Exception],
) -> None:
    sandbox.inject(status, kind, message="nope")
    with pytest.raises(raised) as info:
        await write(dest, sandbox, [make_event()])
    assert info.value.http_status == status  # type: ignore[attr-defined]
    assert sandbox.table("Contacts") == []


async def test_a_wrong_token_is_auth_failed_and_never_echoed(
    dest: AirtableDestination, sandbox: AirtableSandbox
) -> None:
    secret = "patWRONGtoken0000.not-the-right-one"
    credentials = {**sandbox.credentials(), "api_key": secret}
    with pytest.raises(AuthFailed) as info:
        await write(dest, sandbox, [make_event()], credentials=credentials)
    assert info.value.code == "auth_failed" and secret not in str(info.value.info())


async def test_a_timeout_is_transient(tmp_path: Path) -> None:
    async with AirtableSandbox(tmp_path, rate_limit=1000) as sandbox:
        settings = Settings(
            bootstrap_servers="unused:9092",
            destination_ca_file=sandbox.ca_file,
            destination_timeout_s=1.0,
        )
        dest = AirtableDestination(DestinationContext(settings=settings, metrics=Metrics()))
        await dest.setup()
        sandbox.inject(None, delay_s=1.5)
        try:
            with pytest.raises(TransientError) as info:
                await write(dest, sandbox, [make_event()])
        finally:
            await dest.close()
    assert info.value.code == "timeout"
