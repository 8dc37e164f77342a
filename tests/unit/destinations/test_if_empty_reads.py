"""The reads `write: if_empty` makes, as pure parsing: an answer that does not say what a
field holds is `bad_response` for the writes that needed it, never "empty" (which would
overwrite what a rep typed), and a record that is not there is written in full."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.factories import DEFAULT_TARGETS, make_config, make_event
from service.destinations.airtable import current as at_current
from service.destinations.airtable.plan import RecordWrite, TargetPlan
from service.destinations.hubspot.current import parse_read
from service.destinations.salesforce import current as sf_current
from service.errors import DeliveryError, PermanentError, TransientError
from service.models import EVENT, DestinationConfig


def test_hubspot_batch_read_by_id_and_by_email() -> None:
    body = {
        "status": "COMPLETE",
        "results": [{"id": "101", "properties": {"ts_reasoning": "typed", "email": "A@x.example"}}],
        "errors": [{"category": "OBJECT_NOT_FOUND", "context": {"ids": ["102"]}}],
    }
    by_id = parse_read(body, ["101", "102", "103"], by_email=False)
    assert by_id["101"] == {"ts_reasoning": "typed", "email": "A@x.example"}
    assert by_id["102"] is None  # not there: written in full
    assert isinstance(by_id["103"], TransientError) and by_id["103"].code == "bad_response"
    by_email = parse_read(body, ["a@x.example"], by_email=True)
    assert by_email["a@x.example"] == body["results"][0]["properties"]  # type: ignore[index]


@pytest.mark.parametrize(
    "body",
    [None, [], {"results": None}, {"results": [{"id": "101", "properties": None}]},
     {"results": [{"id": 101, "properties": {}}]}, {"errors": [{"context": {"ids": ["101"]}}]}],
)  # fmt: skip
def test_hubspot_an_unreadable_read_is_bad_response_never_empty(body: Any) -> None:
    [(key, value)] = parse_read(body, ["101"], by_email=False).items()
    assert key == "101" and isinstance(value, DeliveryError) and value.code == "bad_response"


def test_salesforce_reads_only_ids_named_beforehand_and_a_refused_read_fails_its_writes() -> None:
    target = {
        **DEFAULT_TARGETS["salesforce"][0],
        "field_options": {"reasoning": {"write": "if_empty"}},
    }
    config = DestinationConfig.model_validate(make_config("salesforce", targets=[target]))
    assert sf_current.guarded(config) == {"Lead": frozenset({"TS_Reasoning__c"})}
    events = [
        EVENT.validate_python(make_event(crm_ids={"salesforce": {"Lead": "00Q000000000001AAA"}})),
        EVENT.validate_python(make_event(crm_ids={"salesforce": {"Lead": "not-an-id"}})),
        EVENT.validate_python(make_event()),
    ]
    wanted = sf_current.known_reads(config, events, [None, None, None])
    assert wanted == {"Lead": ["00Q000000000001AAA"]}  # a malformed id is left to its write
    queries = sf_current.id_queries(wanted, sf_current.guarded(config), 12_000)
    assert [q for _, _, q in queries] == [
        "SELECT Id, TS_Reasoning__c FROM Lead WHERE Id IN ('00Q000000000001AAA')"
    ]
    now: sf_current.Current = {}
    refused = PermanentError("no such field", code="invalid_field")
    sf_current.read_answers(now, queries, [refused], sf_current.guarded(config))
    assert now == {("Lead", "00Q000000000001"): refused}
    with pytest.raises(TransientError):
        sf_current.read_answers(now, queries, [TransientError("x")], sf_current.guarded(config))
    with pytest.raises(DeliveryError, match="without the field"):  # selected, not returned
        sf_current.read_answers(now, queries, [[{"Id": "00Q000000000001AAA"}]],
                                sf_current.guarded(config))  # fmt: skip


def test_airtable_cells_and_the_kept_plan() -> None:
    for record in ({"id": "rec1"}, {"id": "rec1", "fields": None}, {"id": "rec1", "fields": []}):
        with pytest.raises(DeliveryError, match="without its fields"):
            at_current.cells(record)
    with pytest.raises(DeliveryError, match="without its value"):
        at_current.with_cells([{"id": "rec1", "fields": None}], "Email")
    assert (
        at_current.id_formula(["rec1", "rec'2"]) == "OR(RECORD_ID()='rec1',RECORD_ID()='rec\\'2')"
    )
    guard, mapped = frozenset({"Reason"}), frozenset({"Score", "Reason"})
    plan = TargetPlan(
        by_id=[
            RecordWrite(0, "rec1", {"id": "rec1", "fields": {"Reason": "new"}}),
            RecordWrite(1, "rec2", {"id": "rec2", "fields": {"Reason": "new", "Score": "hot"}}),
        ],
        upserts=[
            RecordWrite(2, "a@x", {"fields": {"Email": "a@x", "Reason": "new"}}),
            RecordWrite(3, "b@x", {"fields": {"Email": "b@x", "Reason": "new"}}),
            RecordWrite(4, "c@x", {"fields": {"Email": "c@x", "Reason": "new"}}),
        ],
    )
    ids_now = {"rec1": {"Reason": "typed"}, "rec2": {"Reason": "typed"}}
    values_now = {"a@x": [{"Reason": "typed"}], "c@x": [{"Reason": "x"}, {}]}
    out, kept = at_current.keep_plan(plan, guard, mapped, ids_now, values_now)
    assert kept == {0, 2}  # nothing of the target's own left to write
    assert [w.record["fields"] for w in out.by_id] == [{"Score": "hot"}]
    # b@x: no record (a create) and c@x: two records (Airtable refuses it): all sent
    assert [w.index for w in out.upserts] == [3, 4]
    assert all(w.record["fields"]["Reason"] == "new" for w in out.upserts)
