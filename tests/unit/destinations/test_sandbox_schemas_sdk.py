"""The sandboxes' field schemas through the real SDKs (issue 22): each schema endpoint
reads as the SDK expects (simple-salesforce describe, hubspot-api-client properties,
pyairtable base schema), and each CRM refuses a value the way it really does.
The SDKs block, so they run in threads while the sandbox serves on the test's loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from devkit.sandboxes.airtable import DEFAULT_TABLES, AirtableSandbox, Column
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.properties import HsProperty
from devkit.sandboxes.salesforce import SalesforceSandbox
from devkit.sandboxes.salesforce.schema import SfField
from devkit.sdk_builders.hubspot import close_apis, sdk_client
from service.destinations.airtable.client import Credentials
from service.destinations.airtable.sdk_client import sdk_api

RATING = SfField("picklist", 40, values=("Hot", "Warm", "Cold"), restricted=True)


def salesforce_sdk(sandbox: SalesforceSandbox) -> Salesforce:
    creds = sandbox.credentials()
    return Salesforce(
        instance_url=creds["instance_url"],
        session_id=creds["access_token"],
        version=creds["api_version"],
    )


def refusal(call: Any) -> list[dict[str, Any]]:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        call()
    content: list[dict[str, Any]] = refused.value.content
    return content


async def test_salesforce_describe_picklists_and_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SalesforceSandbox(tmp_path) as sandbox:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_file))
        sandbox.define(
            "Lead",
            {
                "Rating": RATING,
                "TS_Day__c": SfField("date", 0),
                "TS_Locked__c": SfField("string", 80, updateable=False, createable=False),
            },
        )
        sf = salesforce_sdk(sandbox)
        base = {"LastName": "L", "Company": "C"}

        def scenario() -> dict[str, Any]:
            try:
                return {
                    "describe": sf.Lead.describe(),
                    "bad": refusal(lambda: sf.Lead.create({**base, "Rating": "hot"})),
                    "good": sf.Lead.create({**base, "Rating": "Hot"}),
                    "unknown": refusal(lambda: sf.Lead.create({**base, "Nope__c": "x"})),
                    "date": refusal(
                        lambda: sf.Lead.create({**base, "TS_Day__c": "2026-11-22T10:14:59Z"})
                    ),
                    "locked": refusal(lambda: sf.Lead.create({**base, "TS_Locked__c": "x"})),
                }
            finally:
                sf.session.close()

        out = await asyncio.to_thread(scenario)
    fields = {f["name"]: f for f in out["describe"]["fields"]}
    rating = fields["Rating"]
    assert (rating["type"], rating["restrictedPicklist"]) == ("picklist", True)
    assert [(p["value"], p["active"]) for p in rating["picklistValues"]] == [
        ("Hot", True),
        ("Warm", True),
        ("Cold", True),
    ]
    assert (fields["TS_Evaluated_At__c"]["type"], fields["TS_Day__c"]["type"]) == (
        "datetime",
        "date",
    )
    assert fields["TS_Locked__c"]["updateable"] is False
    assert fields["Id"]["createable"] is False and fields["Email"]["type"] == "email"
    assert {"length", "nillable", "createable"} <= set(fields["TS_Score__c"])
    assert out["bad"] == [
        {
            "message": "Rating: bad value for restricted picklist field: hot",
            "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "fields": ["Rating"],
        }
    ]
    assert out["good"]["success"] is True
    assert out["unknown"][0]["errorCode"] == "INVALID_FIELD"
    assert out["date"][0]["errorCode"] == "JSON_PARSER_ERROR"
    assert "Cannot deserialize instance of date" in out["date"][0]["message"]
    assert out["locked"][0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


async def test_salesforce_duplicate_rules_block_and_allow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SalesforceSandbox(tmp_path) as sandbox:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_file))
        [lead] = sandbox.seed("Lead", {"LastName": "A", "Company": "C", "Email": "a@x.example"})
        sandbox.seed("Contact", {"LastName": "B", "Email": "b@x.example"})
        sandbox.duplicate_rule("Lead", "Email", message="Use one of these records?")
        sandbox.duplicate_rule("Contact", "Email", action="allow", message="Possible duplicate")
        sf = salesforce_sdk(sandbox)
        allow = {"Sforce-Duplicate-Rule-Header": "allowSave=true"}
        twin = {"LastName": "A2", "Company": "C", "Email": "A@x.example"}

        def collection(records: list[dict[str, Any]]) -> Any:
            body = {"allOrNone": False, "records": records}
            return sf.restful("composite/sobjects", method="POST", json=body)

        def scenario() -> dict[str, Any]:
            contact = {"LastName": "B2", "Email": "b@x.example"}
            try:
                return {
                    "blocked": refusal(lambda: sf.Lead.create(twin)),
                    "blocked_even_allowed": refusal(lambda: sf.Lead.create(twin, headers=allow)),
                    "alert": refusal(lambda: sf.Contact.create(contact)),
                    "allowed": sf.Contact.create(contact, headers=allow),
                    "batch": collection(
                        [
                            {"attributes": {"type": "Lead"}, **twin},
                            {"attributes": {"type": "Lead"}, "LastName": "N", "Company": "C"},
                        ]
                    ),
                }
            finally:
                sf.session.close()

        out = await asyncio.to_thread(scenario)
        calls = [c.duplicate_header for c in sandbox.calls if c.method == "POST"]
    [blocked] = out["blocked"]
    assert (blocked["errorCode"], blocked["message"]) == (
        "DUPLICATES_DETECTED",
        "Use one of these records?",
    )
    result = blocked["duplicateResut"]  # Salesforce's own spelling of the key
    assert result["allowSave"] is False and result["duplicateRuleEntityType"] == "Lead"
    assert result["matchResults"][0]["matchRecords"][0]["record"]["Id"] == lead
    assert out["blocked_even_allowed"][0]["errorCode"] == "DUPLICATES_DETECTED"
    assert out["alert"][0]["duplicateResut"]["allowSave"] is True
    assert out["allowed"]["success"] is True
    first, second = out["batch"]
    assert first == {
        "success": False,
        "errors": [
            {
                "statusCode": "DUPLICATES_DETECTED",
                "message": "Use one of these records?",
                "fields": [],
            }
        ],
    }
    assert second["success"] is True
    assert "allowSave=true" in calls


async def test_hubspot_properties_and_invalid_option(tmp_path: Path) -> None:
    props: dict[str, dict[str, str | HsProperty]] = {
        "contacts": {
            "ts_score": HsProperty("enumeration", options=("A", "B", "C")),
            "ts_formula": HsProperty("string", read_only=True),
        }
    }
    async with HubSpotSandbox(tmp_path, properties=props) as hs:
        client = sdk_client(hs.credentials(), hs.ca_file, tmp_path)
        core = client.crm.properties.core_api
        batch = client.crm.contacts.batch_api
        upsert = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id_property="email", id=f"{n}@x.example", properties=props_
                )
                for n, props_ in enumerate(({"ts_score": "A"}, {"ts_score": "hot"}))
            ]
        )

        def scenario() -> dict[str, Any]:
            try:
                out: dict[str, Any] = {"all": core.get_all("contacts")}
                out["one"] = core.get_by_name("0-1", "ts_score")
                try:
                    batch.upsert(upsert)
                except ApiException as exc:
                    out["refused"] = (exc.status, json.loads(exc.body))
                return out
            finally:
                close_apis(core, batch)

        out = await asyncio.to_thread(scenario)
    by_name = {p.name: p for p in out["all"].results}
    score = by_name["ts_score"]
    assert (score.type, score.field_type) == ("enumeration", "select")
    assert [o.value for o in score.options] == ["A", "B", "C"]
    assert by_name["ts_formula"].modification_metadata.read_only_value is True
    assert by_name["hs_object_id"].modification_metadata.read_only_value is True
    assert by_name["ts_evaluated_at"].type == "datetime"
    assert by_name["email"].modification_metadata.read_only_value is False
    assert out["one"].name == "ts_score"
    status, body = out["refused"]
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")
    assert body["errors"] == [
        {
            "message": "hot was not one of the allowed options: [A, B, C]",
            "code": "INVALID_OPTION",
            "context": {"propertyName": ["ts_score"]},
        }
    ]
    assert '"error":"INVALID_OPTION","name":"ts_score"' in body["message"]
    assert hs.records("contacts") == []  # the whole batch was refused


async def test_airtable_base_schema_and_refusals(tmp_path: Path) -> None:
    tables = {
        **DEFAULT_TABLES,
        "Leads": {
            "Email": Column("email"),
            "Score": Column("singleSelect", ("A", "B")),
            "Points": Column("number"),
            "Day": Column("date"),
            "Tags": Column("multipleSelects", ("x", "y")),
            "Created": Column("createdTime"),
            "Site": Column("url"),
        },
    }
    async with AirtableSandbox(tmp_path, tables=tables, rate_limit=1000) as sandbox:
        api = sdk_api(Credentials.parse(sandbox.credentials()), sandbox.ca_file, 5.0)

        def refused(fields: dict[str, Any]) -> dict[str, Any]:
            with pytest.raises(requests.HTTPError) as error:
                api.table(sandbox.base_id, "Leads").create(fields)
            assert error.value.response is not None
            body: dict[str, Any] = error.value.response.json()["error"]
            return {"status": error.value.response.status_code, **body}

        def scenario() -> dict[str, Any]:
            try:
                return {
                    "schema": api.base(sandbox.base_id).schema(),
                    "option": refused({"Score": "hot"}),
                    "number": refused({"Points": "hot"}),
                    "unknown": refused({"Nope": "x"}),
                    "computed": refused({"Created": "2026-11-22T10:00:00Z"}),
                    "tags": refused({"Tags": ["z"]}),
                    "ok": api.table(sandbox.base_id, "Leads").create(
                        {"Score": "A", "Points": 3, "Day": "2026-11-22", "Tags": ["x"]}
                    ),
                }
            finally:
                api.session.close()

        out = await asyncio.to_thread(scenario)
    leads = out["schema"].table("Leads")
    assert leads.id.startswith("tbl") and leads.primary_field_id == leads.fields[0].id
    score = leads.field("Score")
    assert score.type == "singleSelect"
    assert [c.name for c in score.options.choices] == ["A", "B"]
    assert leads.field("Points").options.precision == 0
    assert leads.field("Created").type == "createdTime"
    assert {f.type for f in leads.fields} >= {"email", "number", "date", "url"}
    assert out["schema"].table("Contacts").field("TS Evaluated At").type == "dateTime"
    assert out["option"] == {
        "status": 422,
        "type": "INVALID_MULTIPLE_CHOICE_OPTIONS",
        "message": 'Insufficient permissions to create new select option ""hot""',
    }
    assert out["number"]["type"] == "INVALID_VALUE_FOR_COLUMN"
    assert out["unknown"]["type"] == "UNKNOWN_FIELD_NAME"
    assert "computed" in out["computed"]["message"]
    assert out["tags"]["type"] == "INVALID_MULTIPLE_CHOICE_OPTIONS"
    assert out["ok"]["fields"]["Score"] == "A"
