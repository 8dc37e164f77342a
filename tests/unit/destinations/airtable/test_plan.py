"""Pure parts of the Airtable destination: routing, chunking, formulas, error mapping."""

from __future__ import annotations

from typing import Any

import pytest
from pyairtable.formulas import quoted

from devkit.factories import DEFAULT_TARGETS, make_event
from devkit.sandboxes.airtable import DEFAULT_TABLES, Formula
from service.destinations.airtable import AirtableOptions
from service.destinations.airtable.errors import RecordRejected, classify
from service.destinations.airtable.outcomes import ItemResult, combine
from service.destinations.airtable.plan import (
    LONG_TEXT_LIMIT,
    RecordWrite,
    chunked,
    field_ref,
    lookup_groups,
    match_formula,
    plan_target,
)
from service.errors import AuthFailed, Forbidden, PermanentError, RateLimited, TransientError
from service.models import EVENT, DeliveryState, EvaluationCompleted, RecordRef, Target


def _target(**overrides: Any) -> Target:
    return Target.model_validate({**DEFAULT_TARGETS["airtable"][0], **overrides})


def _event(**kw: Any) -> EvaluationCompleted:
    return EVENT.validate_python(make_event(**kw))


def test_plan_routes_by_id_upsert_lookup_and_unmatched() -> None:
    events = [
        _event(crm_ids={"airtable": {"Contacts": "rec00000000000001"}}),
        _event(email="a@example.com"),
        _event(email=None),
    ]
    upsert = plan_target(_target(), events, lambda key: None)
    assert [w.index for w in upsert.by_id] == [0]
    assert upsert.by_id[0].record["id"] == "rec00000000000001"
    assert [w.index for w in upsert.upserts] == [1]
    fields = upsert.upserts[0].record["fields"]
    assert fields["Email"] == "a@example.com" and fields["First Name"] == "Ada"
    assert fields["TS Score"] == "hot" and fields["TS Evaluated At"].endswith("Z")
    assert upsert.unmatched == [2]

    lookup = plan_target(_target(create_if_missing=False), events, lambda key: None)
    assert lookup.upserts == [] and [lk.value for lk in lookup.lookups] == ["a@example.com"]
    assert "Email" not in lookup.lookups[0].fields  # the match column is not rewritten


def test_plan_truncates_long_text_and_reports_each_cut() -> None:
    cuts: list[str] = []
    long = "x" * (LONG_TEXT_LIMIT + 5)
    plan = plan_target(_target(), [_event(reasoning=long, first_name=long)], cuts.append)
    fields = plan.upserts[0].record["fields"]
    assert len(fields["TS Reasoning"]) == LONG_TEXT_LIMIT
    assert len(fields["First Name"]) == LONG_TEXT_LIMIT
    assert sorted(cuts) == ["first_name", "reasoning"]


def test_chunks_hold_ten_and_never_the_same_key_twice() -> None:
    writes = [RecordWrite(i, f"k{i % 7}", {}) for i in range(30)]
    chunks = chunked(writes)
    assert sum(len(c) for c in chunks) == 30
    assert all(len(c) <= 10 for c in chunks)
    assert all(len({w.key for w in c}) == len(c) for c in chunks)
    assert sorted(w.index for c in chunks for w in c) == list(range(30))
    distinct = chunked([RecordWrite(i, str(i), {}) for i in range(95)])
    assert [len(c) for c in distinct] == [10] * 9 + [5]


@pytest.mark.parametrize("value", ["o'brien}@example.com", "back\\slash'@x.io", 'dq"{x}@y.z'])
def test_formula_escaping_matches_pyairtable_and_the_sandbox_parser(value: str) -> None:
    formula = match_formula("Email", [value, "other@example.com"])
    assert formula.startswith("OR({Email}=" + quoted(value))
    parsed = Formula(formula, DEFAULT_TABLES["Contacts"])
    assert parsed.matches({"Email": value})
    assert not parsed.matches({"Email": value + "x"})
    assert field_ref("a}b") == "{a\\}b}"


def test_lookup_groups_stay_under_value_and_length_limits() -> None:
    values = [f"lead_{i}@example.com" for i in range(250)] + ["lead_0@example.com"]
    groups = lookup_groups("Email", values)
    assert [len(g) for g in groups] == [100, 100, 50]
    short = lookup_groups("Email", values, max_chars=500)
    assert all(len(match_formula("Email", g)) <= 500 for g in short)
    assert sum(len(g) for g in short) == 250


def test_classify_maps_airtable_answers() -> None:
    def body(kind: str, message: str = "m") -> dict[str, Any]:
        return {"error": {"type": kind, "message": message}}

    assert isinstance(classify(401, body("AUTHENTICATION_REQUIRED"), {}), AuthFailed)
    forbidden = classify(403, body("INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND"), {})
    assert isinstance(forbidden, Forbidden) and forbidden.code == "forbidden"
    limited = classify(429, body("TOO_MANY_REQUESTS"), {}, penalty_s=30)
    assert isinstance(limited, RateLimited) and limited.retry_after == 30
    assert isinstance(classify(503, "oops", {}), TransientError)
    table = classify(404, body("TABLE_NOT_FOUND"), {})
    assert isinstance(table, PermanentError) and table.code == "table_not_found"
    bad = classify(422, body("INVALID_VALUE_FOR_COLUMN", 'Field "X" cannot accept'), {})
    assert isinstance(bad, RecordRejected) and bad.error.code == "invalid_value_for_column"
    assert "cannot accept" in bad.error.message
    gone = classify(404, body("MODEL_ID_NOT_FOUND", "Record not found"), {})
    assert isinstance(gone, RecordRejected) and gone.error.code == "record_deleted"
    unknown = classify(422, body("UNKNOWN_FIELD_NAME", 'Unknown field name: "Nope"'), {})
    assert isinstance(unknown, RecordRejected)
    assert unknown.applies_to_all([{"fields": {"Nope": 1}}, {"fields": {"Nope": 2}}])
    assert not unknown.applies_to_all([{"fields": {"Nope": 1}}, {"fields": {"Other": 2}}])


def test_combine_prefers_permanent_then_transient_then_records() -> None:
    ref = RecordRef(object="Contacts", id="rec1", action="updated")
    permanent = PermanentError("bad", code="invalid_value_for_column")
    transient = TransientError("later")
    assert combine([ItemResult([ref]), ItemResult(error=permanent)]).state is DeliveryState.FAILED
    retry = combine([ItemResult(error=transient), ItemResult([ref])])
    assert retry.state is DeliveryState.RETRYING
    both = combine([ItemResult(error=transient), ItemResult(error=permanent)])
    assert both.state is DeliveryState.FAILED
    delivered = combine([ItemResult([ref]), ItemResult()])
    assert delivered.state is DeliveryState.DELIVERED and delivered.records == (ref,)
    skipped = combine([ItemResult(), ItemResult()])
    assert skipped.state is DeliveryState.SKIPPED and skipped.reason == "record_not_found"


def test_options_keep_production_defaults_and_refuse_unknown_keys() -> None:
    default = AirtableOptions.from_mapping(None)
    assert (default.requests_per_second, default.penalty_s) == (5, 30.0)
    assert default.requests_per_second / default.window_s >= 0.9 * 5
    tuned = AirtableOptions.from_mapping({"requests_per_second": 20})
    assert tuned.requests_per_second == 20 and tuned.window_s == default.window_s
    with pytest.raises(ValueError, match="unknown airtable options"):  # as every CRM reads them
        AirtableOptions.from_mapping({"requests_per_second": 20, "bogus": 1})
    with pytest.raises(ValueError):
        AirtableOptions.from_mapping({"requests_per_second": 0})


def test_classify_gives_codes_to_typeless_answers() -> None:
    too_big = classify(413, "Request Entity Too Large", {})
    assert isinstance(too_big, RecordRejected) and too_big.error.code == "payload_too_large"
    bad_json = classify(400, {"error": {"type": "INVALID_REQUEST_BODY", "message": "x"}}, {})
    assert isinstance(bad_json, PermanentError) and bad_json.code == "invalid_request_body"
    slow = classify(408, None, {})
    assert isinstance(slow, TransientError) and slow.retryable
