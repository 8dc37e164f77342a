"""Malformed CRM answers, shape by shape (issue 19, finding 2): each parser reads
null, wrong types, missing keys and wrong lengths as `bad_response` (a retry,
never "no record"), and the boundary around `write` turns whatever a parser did
not foresee into that same error, once logged, never echoing the answer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from pydantic import SecretStr

from service.destinations.airtable.client import AirtableClient, Credentials
from service.destinations.airtable.errors import created_ids, matched, records_of
from service.destinations.answers import contained
from service.destinations.hubspot.errors import (
    error_code,
    message_of,
    missing_properties,
    per_input,
)
from service.destinations.hubspot.lookup import pick
from service.destinations.hubspot.outcomes import Done, Input
from service.destinations.salesforce.errors import first_error, record_error
from service.destinations.salesforce.outcomes import saved
from service.destinations.salesforce.pages import MAX_PAGES, Pager, field_value
from service.destinations.salesforce.plan import Write
from service.errors import DeliveryError, PermanentError, RateLimited, TransientError
from service.metrics import Metrics
from service.models import RecordRef
from service.ratelimit import CompletionWindow

STAMP = __import__("datetime").datetime(2025, 1, 1)


def is_bad_response(result: object) -> bool:
    return isinstance(result, TransientError) and result.code == "bad_response"


def bad(call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except TransientError as exc:
        return exc.code == "bad_response"
    return False


UPDATE = Write("Lead", "00Q000000000001AAA", {}, STAMP)
CREATE = Write("Lead", None, {}, STAMP)
SAVE_RESULTS = [
    {"success": False, "errors": None},
    {"success": False, "errors": []},
    {"success": False, "errors": 1},
    {"success": False, "errors": "INVALID"},
    {"success": False, "errors": [5]},
    {"success": False, "errors": [{"statusCode": None, "message": "x"}]},
    {"success": False},
    {"success": "false", "errors": []},
    {"success": None, "id": "00Q1"},
    {"id": "00Q1"},
    {"success": True, "id": 5},
    {"success": True, "id": ""},
    None,
    [],
    "ok",
    17,
]


@pytest.mark.parametrize("result", SAVE_RESULTS)
def test_salesforce_save_results_that_cannot_be_read(result: Any) -> None:
    for write in (UPDATE, CREATE):
        assert is_bad_response(saved(write, result)), (write.record_id, result)


def test_salesforce_save_results_that_can_be_read() -> None:
    assert saved(UPDATE, {"success": True}) == RecordRef(
        object="Lead", id="00Q000000000001AAA", action="updated"
    )
    assert is_bad_response(saved(CREATE, {"success": True}))  # a create needs its id
    refused = saved(
        UPDATE,
        {"success": False, "errors": [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                       "message": "no", "fields": 7}]},
    )  # fmt: skip
    assert (
        isinstance(refused, PermanentError) and refused.code == "field_custom_validation_exception"
    )


@pytest.mark.parametrize(
    "body", [None, 5, "text", [], [None], [{"errorCode": [1], "message": {"a": 1}}], {"x": 1}]
)
def test_salesforce_error_bodies_of_any_shape_make_a_message(body: Any) -> None:
    code, message = first_error(body)
    assert code is None or isinstance(code, str)
    assert isinstance(message, str)
    assert isinstance(
        record_error([{"statusCode": "X", "fields": {"a": 1}}], "Lead"), DeliveryError
    )


def page(records: Any = (), **extra: Any) -> dict[str, Any]:
    return {"totalSize": len(records) if isinstance(records, list) else 0, "done": True,
            "records": records, **extra}  # fmt: skip


NEXT = "/services/data/v62.0/query/01gD0000002HU6KIAW-2000"
UNREADABLE_PAGES = [
    None,
    [],
    {"records": None},
    {"records": {"Id": "1"}},
    {"records": [None]},
    {"records": [{"Id": None}]},
    {"records": [{"Id": 5}]},
    {"records": [{"Id": ""}]},
    {"records": [{"Name": "no id"}]},
    page([{"Id": "1"}], done="true"),
    page([{"Id": "1"}], done=None),
    page([{"Id": "1"}], totalSize="1"),
    page([{"Id": "1"}], totalSize=-1),
    page([{"Id": "1"}], totalSize=2),  # a count that does not match
    page([], done=False),  # unfinished, nothing to follow
    page([], done=False, nextRecordsUrl=None),
    page([], done=False, nextRecordsUrl=7),
    # The bearer token goes to whatever URL we follow: only a locator path on our instance.
    page([], done=False, nextRecordsUrl="https://evil.example" + NEXT),
    page([], done=False, nextRecordsUrl="//evil.example" + NEXT),
    page([], done=False, nextRecordsUrl="@evil.example" + NEXT),
    page([], done=False, nextRecordsUrl=NEXT + "/../../../../oauth2/token"),
    page([], done=False, nextRecordsUrl=NEXT + "?x=1"),
    page([], done=False, nextRecordsUrl="/services/data/v62.0/sobjects/Lead"),
]


@pytest.mark.parametrize("body", UNREADABLE_PAGES)
def test_salesforce_query_pages_that_cannot_be_read(body: Any) -> None:
    assert bad(Pager().add, body)


def test_salesforce_paging_follows_each_cursor_once_and_at_most_max_pages() -> None:
    pager = Pager()
    assert pager.add(page([{"Id": "1"}], done=False, nextRecordsUrl=NEXT)) == NEXT
    assert bad(pager.add, page([{"Id": "2"}], done=False, nextRecordsUrl=NEXT))  # a loop
    endless = Pager()
    with pytest.raises(TransientError) as caught:
        for n in range(MAX_PAGES + 1):
            endless.add(page([], done=False, nextRecordsUrl=f"{NEXT[:-5]}-{n}"))
    assert caught.value.code == "bad_response" and len(endless.seen) == MAX_PAGES - 1
    whole = Pager()
    whole.add({"totalSize": 2, "done": False, "records": [{"Id": "1"}], "nextRecordsUrl": NEXT})
    assert whole.add({"totalSize": 2, "done": True, "records": [{"Id": "2"}]}) is None
    assert [r["Id"] for r in whole.records] == ["1", "2"]


def test_salesforce_fields_are_found_whatever_their_case() -> None:
    assert field_value({"Id": "1", "Email": "a@x"}, "email") == "a@x"
    assert bad(field_value, {"Id": "1"}, "Email")


INPUTS = [Input("0", {"id": "101", "properties": {}}), Input("1", {"properties": {}})]
HUBSPOT_BATCH_ANSWERS = [
    None,
    "text",
    {"errors": 1},
    {"errors": [1, None, "x", {"context": []}, {"context": {"ids": 5}}]},
    {"results": None},
    {"results": 1},
    {"results": [{"id": None, "objectWriteTraceId": "0"}, {"objectWriteTraceId": "1"}]},
    {"results": [{"id": {"a": 1}, "objectWriteTraceId": "0"}, {"id": [], "properties": []}]},
    {"results": [{"id": "101", "objectWriteTraceId": "0", "properties": None}]},  # input 1 left
    {"results": [{"id": "101", "properties": {"hs_object_id": None}}]},
]


@pytest.mark.parametrize("body", HUBSPOT_BATCH_ANSWERS)
def test_hubspot_batch_answers_that_cannot_be_read(body: Any) -> None:
    results = per_input(body, INPUTS, created=False)
    assert set(results) == {"0", "1"}
    assert is_bad_response(results["1"])  # never Missing: that would be record_not_found
    assert is_bad_response(results["0"]) or results["0"] == Done("101", False)


@pytest.mark.parametrize(
    "body",
    [{"errors": 1}, {"errors": "x", "message": None}, {"errors": [{"context": "x", "code": 1}]},
     {"errors": [{"code": "PROPERTY_DOESNT_EXIST", "context": {"propertyName": 5}}]},
     {"message": ["a"], "category": {}}, None, 5],
)  # fmt: skip
def test_hubspot_error_bodies_of_any_shape(body: Any) -> None:
    assert isinstance(message_of(body, "fallback"), str)
    assert isinstance(error_code(body), str)
    assert isinstance(missing_properties(body), set)


HUBSPOT_SEARCH_PAGES = [
    None,
    {"results": None},
    {"results": [{"id": 5, "properties": {"domain": "a.example"}}]},
    {"results": [{"id": "1", "properties": None}]},
    {"results": [{"id": "1", "properties": []}]},
    {"results": [{"id": "1", "properties": {"domain": None}}]},
    {"results": [{"id": "1", "properties": {"domain": 7}}]},
    {"results": [], "paging": {"next": {"after": {"x": 1}}}},
]


@pytest.mark.parametrize("body", HUBSPOT_SEARCH_PAGES)
def test_hubspot_search_pages_that_cannot_be_read(body: Any) -> None:
    assert bad(pick, {}, body, "domain")


def test_hubspot_search_paging_of_odd_shapes_is_the_last_page() -> None:
    for paging in (None, [], "x", {"next": None}, {"next": "x"}, {"next": {"after": ""}}):
        assert pick({}, {"results": [], "paging": paging}, "domain") == (None, 0)


@pytest.mark.parametrize(
    "body",
    [None, {"records": None}, {"records": [{"id": None}]}, {"records": [{"id": 5}]},
     {"records": [{"fields": {}}]}, {"records": "x"}],
)  # fmt: skip
def test_airtable_record_lists_that_cannot_be_read(body: Any) -> None:
    assert bad(records_of, body)


def test_airtable_upserts_and_finds_that_cannot_be_read() -> None:
    for answer in ({"createdRecords": 5}, {"createdRecords": [None]}, {"createdRecords": "rec"}):
        assert bad(created_ids, answer)
    assert created_ids({"records": []}) == set()
    for record in ({"id": "r", "fields": None}, {"id": "r"}, {"id": "r", "fields": {"Email": 5}},
                   {"id": "r", "fields": {}}):  # fmt: skip
        assert bad(matched, [record], "Email")


async def test_airtable_list_paging_stops_on_a_repeated_or_odd_offset() -> None:
    secret = Credentials(api_key=SecretStr("k" * 20), base_id="app1", base_url="https://x")
    for offsets in (["o1", "o1"], [5], [["o"]]):
        client = AirtableClient(None, CompletionWindow(5, 1.0), Metrics(), secret)  # type: ignore[arg-type]
        pages = iter(offsets)

        async def answer(*_: Any, pages: Any = pages, **__: Any) -> Any:
            return {"records": [], "offset": next(pages)}

        client._call = answer  # type: ignore[method-assign]
        with pytest.raises(TransientError) as caught:
            await client.find("Contacts", "Email", ["a@x"])
        assert caught.value.code == "bad_response"


async def test_the_boundary_turns_surprises_into_bad_response_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def surprise() -> None:
        raise KeyError("token-abcdefgh-0123")  # a parser error echoing an answer's text

    with caplog.at_level(logging.ERROR), pytest.raises(TransientError) as caught:
        await contained("hubspot", surprise())
    assert caught.value.code == "bad_response" and caught.value.retryable
    assert "token-abcdefgh" not in caught.value.message and "KeyError" in caught.value.message
    [line] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "hubspot" in line.getMessage() and "token-abcdefgh" not in line.getMessage()
    assert "test_crm_answer_shapes.py" in line.getMessage()  # where the parser broke


async def test_the_boundary_lets_delivery_errors_and_cancellation_through() -> None:
    async def limited() -> None:
        raise RateLimited("slow down", retry_after=3)

    with pytest.raises(RateLimited):
        await contained("airtable", limited())
    task = asyncio.create_task(contained("airtable", asyncio.sleep(10)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def group() -> None:
        raise ExceptionGroup("chunks", [TypeError("x"), RateLimited("y", retry_after=1)])

    with pytest.raises(TransientError) as caught:
        await contained("airtable", group())
    assert caught.value.code == "bad_response"
