"""How each CRM's refusal of a value, and a Salesforce duplicate rule, become statuses
(contract §4a): `invalid_value` naming the field and the value, `duplicate_detected`
with the rule's message, both permanent. Bodies as the CRMs send them (see
docs/salesforce.md, docs/hubspot.md, docs/airtable.md for the sources)."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.factories import BASE_TIME
from service.destinations.airtable.errors import RecordRejected, classify
from service.destinations.hubspot.errors import per_input
from service.destinations.hubspot.outcomes import Input
from service.destinations.hubspot.refusals import refusals, refused_input
from service.destinations.salesforce.errors import record_error, request_error
from service.destinations.salesforce.outcomes import saved
from service.destinations.salesforce.plan import Plan, Write
from service.destinations.salesforce.writer import requests
from service.errors import PermanentError

PICKLIST = {
    "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "message": "Rating: bad value for restricted picklist field: hot",
    "fields": ["Rating"],
}
HUBSPOT_OPTION = (  # a real v3 answer's shape (the checks embedded in the message)
    'Property values were not valid: [{"isValid":false,"message":"hot was not one of the '
    'allowed options: [A, B, C]","error":"INVALID_OPTION","name":"ts_score",'
    '"localizedErrorMessage":"hot was not one of the allowed options: [A, B, C]"}]'
)


def test_salesforce_restricted_picklist_is_invalid_value_naming_field_and_value() -> None:
    error = record_error([PICKLIST], "Lead", {"Rating": "hot", "TS_Reasoning__c": "x"})
    assert isinstance(error, PermanentError) and not error.retryable
    assert error.code == "invalid_value"
    assert error.message == (
        "Salesforce refused 'hot' for Lead.Rating: INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: "
        "Rating: bad value for restricted picklist field: hot"
    )
    # Without the field list, the value still comes from the message.
    bare = record_error([{**PICKLIST, "fields": []}], "Lead", {})
    assert bare.code == "invalid_value" and "'hot' for Lead:" in bare.message
    wrong_type = record_error(
        [{"statusCode": "INVALID_TYPE_ON_FIELD_IN_RECORD", "message": "Score: value not of "
          "required type: hot", "fields": ["Score__c"]}], "Contact", {"Score__c": "hot"},
    )  # fmt: skip
    assert wrong_type.code == "invalid_value" and "'hot' for Contact.Score__c" in wrong_type.message


@pytest.mark.parametrize("key", ["duplicateResut", "duplicateResult"])
def test_salesforce_duplicates_detected_is_duplicate_detected_with_the_rules_message(
    key: str,
) -> None:
    collection = {"statusCode": "DUPLICATES_DETECTED", "message": "Use one of these records?",
                  "fields": []}  # fmt: skip
    write = Write("Lead", None, {"Email": "a@b.example"}, BASE_TIME)
    error = saved(write, {"success": False, "errors": [collection]})
    assert isinstance(error, PermanentError) and error.code == "duplicate_detected"
    assert error.message == "Salesforce DUPLICATES_DETECTED on Lead: Use one of these records?"
    result = {"duplicateRule": "Standard_Lead_Rule", "allowSave": False}
    single = [{key: result, "errorCode": "DUPLICATES_DETECTED",
               "message": "Use one of these records?"}]  # fmt: skip
    request = request_error(400, single, quota_retry_s=1, limit_retry_s=1)
    assert request.code == "duplicate_detected" and not request.retryable
    assert request.message == (
        "Salesforce DUPLICATES_DETECTED (duplicate rule Standard_Lead_Rule): "
        "Use one of these records?"
    )


def test_salesforce_a_value_its_json_reader_cannot_take_is_invalid_value() -> None:
    body = [{"errorCode": "JSON_PARSER_ERROR", "message": "Cannot deserialize instance of "
             "date from VALUE_STRING value 2026-11-22T10:14:59Z or request may be missing a "
             "required field at [line:1, column:80]"}]  # fmt: skip
    error = request_error(400, body, quota_retry_s=1, limit_retry_s=1)
    assert error.code == "invalid_value" and "'2026-11-22T10:14:59Z'" in error.message
    other = [{"errorCode": "JSON_PARSER_ERROR", "message": "Unexpected character"}]
    assert request_error(400, other, quota_retry_s=1, limit_retry_s=1).code == "json_parser_error"


def test_salesforce_allow_save_writes_go_in_requests_of_their_own() -> None:
    plan = Plan(
        writes=[
            Write("Lead", "00Q000000000001AAA", {"A": 1}, BASE_TIME),
            Write("Lead", "00Q000000000002AAA", {"A": 1}, BASE_TIME, allow_save=True),
            Write("Lead", None, {"A": 1}, BASE_TIME, allow_save=True),
            Write("Lead", None, {"A": 1}, BASE_TIME),
        ]
    )
    got = [(r.method, r.allow_save, r.writes) for r in requests(plan, 200)]
    assert got == [("PATCH", False, [0]), ("PATCH", True, [1]), ("POST", False, [3]),
                   ("POST", True, [2])]  # fmt: skip


def test_hubspot_refusals_read_both_shapes() -> None:
    embedded = {"status": "error", "message": HUBSPOT_OPTION, "category": "VALIDATION_ERROR"}
    [one] = refusals(embedded)
    assert (one.prop, one.code, one.value) == ("ts_score", "INVALID_OPTION", "hot")
    listed = {"category": "VALIDATION_ERROR", "message": "Property values were not valid",
              "errors": [{"code": "INVALID_DATE", "message": "x is not a valid date",
                          "context": {"propertyName": ["ts_day"]}},
                         {"code": "PROPERTY_DOESNT_EXIST", "message": "nope",
                          "context": {"propertyName": ["ts_gone"]}}]}  # fmt: skip
    [day] = refusals(listed)
    assert (day.prop, day.code, day.value) == ("ts_day", "INVALID_DATE", None)
    for garbage in (None, "x", {"message": "Property values were not valid: [{"}, {"errors": 1}):
        assert refusals(garbage) == []
    error = refused_input([one], {"ts_score": "hot"}, 400)
    assert error is not None and error.code == "invalid_value"
    assert error.message.startswith("HubSpot refused 'hot' for the property ts_score: ")
    assert refused_input([one], {"ts_reasoning": "x"}, 400) is None


def test_hubspot_a_207_names_the_refused_input_and_writes_the_rest() -> None:
    inputs = [
        Input("0", {"idProperty": "email", "id": "a@x.example", "properties": {"ts_score": "hot"}}),
        Input("1", {"idProperty": "email", "id": "b@x.example", "properties": {"ts_score": "A"}}),
    ]
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": [{"id": "201", "objectWriteTraceId": "1", "properties": {}}],
        "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": HUBSPOT_OPTION,
                    "context": {"objectWriteTraceId": ["0"]}}],
    }  # fmt: skip
    out = per_input(body, inputs, created=False)
    refused = out["0"]
    assert isinstance(refused, PermanentError) and refused.code == "invalid_value"
    assert "'hot' for the property ts_score" in refused.message
    assert not isinstance(out["1"], PermanentError)


@pytest.mark.parametrize(
    ("kind", "message", "fields", "expected"),
    [
        (
            "INVALID_MULTIPLE_CHOICE_OPTIONS",
            'Insufficient permissions to create new select option ""hot""',
            {"Email": "a@x.example", "Score": "hot"},
            "Airtable refused 'hot' for Contacts.Score: INVALID_MULTIPLE_CHOICE_OPTIONS: ",
        ),
        (
            "INVALID_VALUE_FOR_COLUMN",
            'Field "When" cannot accept the provided value',
            {"When": "yesterday"},
            "Airtable refused 'yesterday' for Contacts.When: INVALID_VALUE_FOR_COLUMN: ",
        ),
        (
            "INVALID_VALUE_FOR_COLUMN",
            "Field location_latitude can not accept value 41.884089",
            {"location_latitude": "41.884089"},
            "Airtable refused '41.884089' for Contacts.location_latitude: ",
        ),
    ],
)
def test_airtable_value_refusals_name_the_field_and_value(
    kind: str, message: str, fields: dict[str, Any], expected: str
) -> None:
    rejected = classify(422, {"error": {"type": kind, "message": message}}, {})
    assert isinstance(rejected, RecordRejected)
    error = rejected.for_record("Contacts", fields)
    assert error.code == "invalid_value" and not error.retryable and error.http_status == 422
    assert error.message.startswith(expected)


def test_airtable_other_record_refusals_keep_their_code() -> None:
    rejected = classify(422, {"error": {"type": "INVALID_RECORDS", "message": "bad"}}, {})
    assert isinstance(rejected, RecordRejected)
    assert rejected.for_record("Contacts", {}).code == "invalid_records"
