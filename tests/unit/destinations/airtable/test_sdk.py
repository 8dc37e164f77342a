"""pyairtable, unchanged, against the HTTPS sandbox: the sandbox speaks the real wire
format, and the destination's SDK client (option `client: "sdk"`) behaves like the
aiohttp one. The SDK trusts the sandbox CA through its requests session's `verify`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import requests
from pyairtable import Api
from pyairtable.formulas import EQ, OR, Field

from devkit.factories import DEFAULT_TARGETS, make_batch, make_config, make_event
from devkit.sandboxes.airtable import AirtableSandbox
from service.destinations.airtable.client import Credentials
from service.destinations.airtable.plan import match_formula
from service.destinations.airtable.sdk_client import sdk_api
from service.errors import AuthFailed, RateLimited
from service.models import DeliveryState
from tests.unit.destinations.airtable.test_destination import opened


def check_records(sandbox: AirtableSandbox, api: Api) -> None:
    table = api.table(sandbox.base_id, "Contacts")
    first = table.create({"Email": "ada@example.com", "First Name": "Ada"})
    assert first["id"].startswith("rec") and len(first["id"]) == 17
    batch = table.batch_create([{"Email": f"b{i}@example.com"} for i in range(12)])
    assert len(batch) == 12  # pyairtable sent two requests of at most 10
    assert [h.records for h in sandbox.calls("POST")] == [1, 10, 2]

    upsert = table.batch_upsert(
        [
            {"fields": {"Email": "ada@example.com", "TS Score": "warm"}},
            {"fields": {"Email": "new@example.com", "TS Score": "hot"}},
        ],
        key_fields=["Email"],
    )
    assert upsert["updatedRecords"] == [first["id"]]
    assert len(upsert["createdRecords"]) == 1

    odd = "o'brien}@example.com"
    table.create({"Email": odd})
    by_sdk_formula = table.all(formula=OR(EQ(Field("Email"), odd)), fields=["Email"])
    by_our_formula = table.all(formula=match_formula("Email", [odd, "ada@example.com"]))
    assert [r["fields"] for r in by_sdk_formula] == [{"Email": odd}]
    assert {r["fields"]["Email"] for r in by_our_formula} == {odd, "ada@example.com"}
    before = len(sandbox.calls("GET"))
    assert len(table.all(page_size=5)) == 15  # follows "offset" across 3 pages
    assert len(sandbox.calls("GET")) == before + 3

    updated = table.update(first["id"], {"TS Reasoning": "Read the docs."})
    assert updated["fields"]["TS Score"] == "warm"  # PATCH keeps other cells
    assert table.get(first["id"])["fields"]["TS Reasoning"] == "Read the docs."


def check_errors(sandbox: AirtableSandbox, api: Api) -> None:
    table = api.table(sandbox.base_id, "Contacts")
    with pytest.raises(requests.HTTPError) as unknown:
        table.create({"Nope": 1})
    assert unknown.value.response is not None
    assert unknown.value.response.status_code == 422
    assert "UNKNOWN_FIELD_NAME" in str(unknown.value.args)
    with pytest.raises(requests.HTTPError) as missing:
        table.get("recMissing0000000")
    assert missing.value.response is not None
    assert missing.value.response.json()["error"]["type"] == "MODEL_ID_NOT_FOUND"
    sandbox.inject(429, "TOO_MANY_REQUESTS")
    before = len(sandbox.hits)
    with pytest.raises(requests.HTTPError):
        table.all()
    assert len(sandbox.hits) == before + 1  # pyairtable's own retry is off


@pytest.mark.parametrize("check", [check_records, check_errors])
async def test_pyairtable_against_the_sandbox(
    sandbox: AirtableSandbox, check: Callable[[AirtableSandbox, Api], None]
) -> None:
    api = sdk_api(Credentials.parse(sandbox.credentials()), sandbox.ca_file, 5.0)
    try:
        # pyairtable blocks; the sandbox serves on this loop, so the SDK runs in a thread.
        await asyncio.to_thread(check, sandbox, api)
    finally:
        api.session.close()


async def test_destination_through_the_sdk_client(sandbox: AirtableSandbox) -> None:
    [known] = sandbox.seed("Contacts", [{"Email": "known@example.com"}])
    create_off = [{**DEFAULT_TARGETS["airtable"][0], "create_if_missing": False}]
    async with opened(sandbox, client="sdk", requests_per_second=500) as dest:
        upserted = await dest.write(
            make_batch(make_config("airtable"), [make_event(lead_id="sdk")], sandbox.credentials())
        )
        looked_up = await dest.write(
            make_batch(
                make_config("airtable", targets=create_off),
                [make_event(lead_id="known"), make_event(lead_id="nobody")],
                sandbox.credentials(),
            )
        )
        wrong = {**sandbox.credentials(), "api_key": "patWrongToken0000.nope"}
        with pytest.raises(AuthFailed):
            await dest.write(make_batch(make_config("airtable"), [make_event()], wrong))
        sandbox.inject(429, "TOO_MANY_REQUESTS")
        with pytest.raises(RateLimited) as limited:
            await dest.write(
                make_batch(make_config("airtable"), [make_event()], sandbox.credentials())
            )
    assert [(r.object, r.action) for r in upserted[0].records] == [("Contacts", "created")]
    assert [r.id for r in looked_up[0].records] == [known]
    assert looked_up[1].state is DeliveryState.SKIPPED
    assert limited.value.retry_after == 30.0  # the documented penalty, no Retry-After sent
    assert dest._pacers.get(sandbox.base_id).blocked_for > 29
