"""check-config's pure comparison (service/commands/checkconfig/compare.py), per CRM and per kind
of problem, from schema answers in each CRM's wire format (so the parsers are covered
too): unknown and read-only fields, types that cannot take the value, fixed values
without (or with a wrong) values map, missing match fields, and a clean config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from devkit.factories import make_config
from service.commands.checkconfig import airtable, hubspot, salesforce
from service.commands.checkconfig.cli import BadInput, load
from service.commands.checkconfig.compare import check, objects_of
from service.commands.checkconfig.fields import Schemas
from service.config.validation import validate
from service.errors import ConfigRejected
from service.models import DestinationConfig


def sf_field(name: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "updateable": True, "createable": True,
            "filterable": True, "picklistValues": [], "restrictedPicklist": False,
            **extra}  # fmt: skip


def picklist(name: str, *values: str, restricted: bool = True) -> dict[str, Any]:
    listed = [{"value": v, "label": v, "active": True} for v in values]
    listed.append({"value": "Retired", "label": "Retired", "active": False})
    return sf_field(name, "picklist", picklistValues=listed, restrictedPicklist=restricted)


SF_LEAD = [
    sf_field("Id", "id", updateable=False, createable=False),
    sf_field("Email", "email"),
    sf_field("TS_Score__c"),
    sf_field("TS_Reasoning__c", "textarea", filterable=False),
    sf_field("TS_Evaluated_At__c", "datetime"),
    sf_field("TS_Evaluated_On__c", "date"),
    sf_field("TS_Points__c", "double"),
    sf_field("TS_Formula__c", updateable=False, createable=False),
    picklist("Rating", "Hot", "Warm", "Cold"),
    picklist("Open_Rating__c", "A", restricted=False),
]
SF_ACCOUNT = [sf_field("Website", "url"), picklist("Tier__c", "High", "Medium", "Low")]


def sf_schemas() -> Schemas:
    return {
        "Lead": salesforce.parse_describe({"name": "Lead", "fields": SF_LEAD}),
        "Account": salesforce.parse_describe({"name": "Account", "fields": SF_ACCOUNT}),
    }


def sf_config(fields: dict[str, str], **target: Any) -> dict[str, Any]:
    base = {"object": "Lead", "match": {"crm_field": "Email", "event_field": "lead.email"}}
    return make_config("salesforce", targets=[{**base, "fields": fields, **target}])


def lines(raw: dict[str, Any], schemas: Schemas) -> list[str]:
    config = validate(DestinationConfig.model_validate(raw))
    return [p.line(config) for p in check(config, schemas)]


def test_salesforce_default_mapping_is_clean() -> None:
    raw = sf_config(
        {"score": "TS_Score__c", "reasoning": "TS_Reasoning__c",
         "evaluated_at": "TS_Evaluated_At__c"},
        create_if_missing=True,
    )  # fmt: skip
    assert lines(raw, sf_schemas()) == []


SF_CASES = [
    ({"score": "TS_Scor__c"}, "Lead.TS_Scor__c: score: no such field (did you mean TS_Score__c?)"),
    ({"score": "TS_Formula__c"}, "Lead.TS_Formula__c: score: the field is read-only"),
    (
        {"evaluated_at": "TS_Evaluated_On__c"},
        "Lead.TS_Evaluated_On__c: evaluated_at: a Date field: Salesforce refuses a date-time",
    ),
    ({"score": "TS_Points__c"}, "Lead.TS_Points__c: score: a double field cannot take the text"),
    ({"score": "Email"}, "Lead.Email: score: an email field cannot take 'hot'"),
    ({"reasoning": "Rating"}, "Lead.Rating: reasoning: free text cannot go into a picklist"),
    (
        {"score": "Rating"},
        "Lead.Rating: score: 'hot', 'warm', 'cold' would be refused by this picklist field "
        "(allowed: [Hot, Warm, Cold]); map them with field_options.score.values",
    ),
]


@pytest.mark.parametrize(("fields", "expected"), SF_CASES)
def test_salesforce_problems(fields: dict[str, str], expected: str) -> None:
    [line] = lines(sf_config(fields), sf_schemas())
    assert line.startswith(f"org_1/salesforce target {expected}")


def test_salesforce_value_maps_and_unrestricted_picklists() -> None:
    good = {"score": {"values": {"hot": "Hot", "warm": "Warm", "cold": "Cold"}}}
    wrong = {"score": {"values": {"hot": "Hot", "warm": "Tepid", "cold": "Cold"}}}
    assert lines(sf_config({"score": "Rating"}, field_options=good), sf_schemas()) == []
    assert lines(sf_config({"score": "Open_Rating__c"}), sf_schemas()) == []  # saves any value
    [bad] = lines(sf_config({"score": "Rating"}, field_options=wrong), sf_schemas())
    assert bad.endswith("score: the values map writes 'Tepid', not allowed by this field "
                        "(allowed: [Hot, Warm, Cold])")  # fmt: skip
    day = sf_config({"evaluated_at": "TS_Evaluated_On__c"}, field_types={"evaluated_at": "date"})
    assert lines(day, sf_schemas()) == []  # the day is written as YYYY-MM-DD


def test_salesforce_match_and_propensity() -> None:
    match = {"crm_field": "Emial", "event_field": "lead.email"}
    raw = sf_config({"score": "TS_Score__c"}, match=match)
    assert lines(raw, sf_schemas()) == [
        "org_1/salesforce match Lead.Emial: no such field (did you mean Email?)"
    ]
    unsearchable = {"crm_field": "TS_Reasoning__c", "event_field": "lead.email"}
    [line] = lines(sf_config({"score": "TS_Score__c"}, match=unsearchable), sf_schemas())
    assert line.endswith("match Lead.TS_Reasoning__c: a textarea field cannot be searched")
    propensity = {"enabled": True, "object": "Account", "field": "Tier__c",
                  "match": {"crm_field": "Website", "event_field": "lead.domain"}}  # fmt: skip
    raw = make_config("salesforce", targets=sf_config({"score": "TS_Score__c"})["targets"])
    raw["propensity"] = propensity
    [line] = lines(raw, sf_schemas())
    assert line.startswith("org_1/salesforce propensity Account.Tier__c: propensity: "
                           "'high', 'medium', 'low' would be refused")  # fmt: skip
    assert line.endswith("map them with propensity.values")
    raw["propensity"] = {**propensity, "values": {"high": "High", "medium": "Medium", "low": "Low"}}
    assert lines(raw, sf_schemas()) == []
    assert objects_of(DestinationConfig.model_validate(raw)) == {"Lead", "Account"}


def hs_prop(name: str, kind: str = "string", *options: str, read_only: bool = False) -> Any:
    return {"name": name, "label": name, "type": kind, "fieldType": "text",
            "options": [{"label": o, "value": o, "hidden": False} for o in options],
            "modificationMetadata": {"readOnlyValue": read_only, "archivable": True,
                                     "readOnlyDefinition": False}}  # fmt: skip


HS_CONTACTS = [
    hs_prop("email"),
    hs_prop("ts_score"),
    hs_prop("ts_reasoning"),
    hs_prop("ts_evaluated_at", "datetime"),
    hs_prop("ts_day", "date"),
    hs_prop("ts_grade", "enumeration", "A", "B", "C"),
    hs_prop("ts_count", "number"),
    hs_prop("hs_calculated", read_only=True),
]


def hs_config(fields: dict[str, str], **target: Any) -> dict[str, Any]:
    base = {"object": "contacts", "match": {"crm_field": "email", "event_field": "lead.email"}}
    return make_config("hubspot", targets=[{**base, "fields": fields, **target}])


def hs_schemas() -> Schemas:
    return {"contacts": hubspot.parse_properties({"results": HS_CONTACTS})}


HS_CASES = [
    ({"score": "ts_scroe"}, "contacts.ts_scroe: score: no such field (did you mean ts_score?)"),
    ({"score": "hs_calculated"}, "contacts.hs_calculated: score: the field is read-only"),
    ({"evaluated_at": "ts_day"}, "contacts.ts_day: evaluated_at: a date property: HubSpot refuses"),
    ({"score": "ts_count"}, "contacts.ts_count: score: a number field cannot take the text 'hot'"),
    (
        {"score": "ts_grade"},
        "contacts.ts_grade: score: 'hot', 'warm', 'cold' would be refused by this enumeration "
        "field (allowed: [A, B, C])",
    ),
    ({"reasoning": "ts_grade"}, "contacts.ts_grade: reasoning: free text cannot go into a"),
]


@pytest.mark.parametrize(("fields", "expected"), HS_CASES)
def test_hubspot_problems(fields: dict[str, str], expected: str) -> None:
    [line] = lines(hs_config(fields), hs_schemas())
    assert line.startswith(f"org_1/hubspot target {expected}")


def test_hubspot_clean_maps_date_flag_and_missing_objects() -> None:
    grades = {"score": {"values": {"hot": "A", "warm": "B", "cold": "C"}}}
    assert lines(hs_config({"score": "ts_grade"}, field_options=grades), hs_schemas()) == []
    day = hs_config({"evaluated_at": "ts_day"}, field_types={"evaluated_at": "date"})
    assert lines(day, hs_schemas()) == []  # midnight UTC in epoch milliseconds
    match = {"crm_field": "e_mail", "event_field": "lead.email"}
    assert lines(hs_config({"score": "ts_score"}, match=match), hs_schemas()) == [
        "org_1/hubspot match contacts.e_mail: no such field (did you mean email?)"
    ]
    companies = make_config("hubspot", targets=[{"object": "companies",
                                                 "fields": {"score": "ts_score"}}])  # fmt: skip
    assert lines(companies, {"companies": None}) == [
        "org_1/hubspot target companies: no such object"
    ]


def at_field(name: str, kind: str, *choices: str) -> dict[str, Any]:
    field: dict[str, Any] = {"id": f"fld{name}", "name": name, "type": kind}
    if choices:
        field["options"] = {"choices": [{"id": f"sel{c}", "name": c} for c in choices]}
    return field


AT_BASE = {
    "tables": [
        {
            "id": "tblContacts",
            "name": "Contacts",
            "primaryFieldId": "fldEmail",
            "fields": [
                at_field("Email", "email"),
                at_field("First Name", "singleLineText"),
                at_field("TS Score", "singleSelect", "hot", "warm", "cold"),
                at_field("Grade", "singleSelect", "A", "B"),
                at_field("Tags", "multipleSelects", "hot", "warm", "cold"),
                at_field("TS Reasoning", "multilineText"),
                at_field("TS Evaluated At", "dateTime"),
                at_field("Day", "date"),
                at_field("Points", "number"),
                at_field("Created", "createdTime"),
            ],
            "views": [],
        }
    ]
}


def at_config(fields: dict[str, str], **target: Any) -> dict[str, Any]:
    base = {"object": "Contacts", "match": {"crm_field": "Email", "event_field": "lead.email"}}
    return make_config("airtable", targets=[{**base, "fields": fields, **target}])


def at_schemas(*tables: str) -> Schemas:
    parsed = airtable.parse_tables(AT_BASE)
    return {t: parsed.get(t) for t in tables or ("Contacts",)}


AT_CASES = [
    ({"score": "TS score"}, "Contacts.TS score: score: no such field (did you mean TS Score?)"),
    ({"score": "Created"}, "Contacts.Created: score: the field is read-only"),
    ({"evaluated_at": "Day"}, "Contacts.Day: evaluated_at: a date field: Airtable keeps the day"),
    ({"score": "Points"}, "Contacts.Points: score: a number field cannot take the text 'hot'"),
    (
        {"score": "Grade"},
        "Contacts.Grade: score: 'hot', 'warm', 'cold' would be refused by this singleSelect "
        "field (allowed: [A, B])",
    ),
    ({"score": "Tags"}, "Contacts.Tags: score: a multipleSelects field takes a list"),
    ({"score": "Email"}, "Contacts.Email: score: an email field cannot take 'hot'"),
]


@pytest.mark.parametrize(("fields", "expected"), AT_CASES)
def test_airtable_problems(fields: dict[str, str], expected: str) -> None:
    [line] = lines(at_config(fields), at_schemas())
    assert line.startswith(f"org_1/airtable target {expected}")


def test_airtable_default_match_create_fields_and_tables() -> None:
    assert lines(make_config("airtable"), at_schemas()) == []  # the sandbox's defaults
    raw = at_config({"score": "TS Score"}, create_fields={"company": "Company"},
                    create_if_missing=True)  # fmt: skip
    assert lines(raw, at_schemas()) == [
        "org_1/airtable target Contacts.Company: create_fields company: no such field"
    ]
    missing = {"crm_field": "E-mail", "event_field": "lead.email"}
    assert lines(at_config({"score": "TS Score"}, match=missing), at_schemas()) == [
        "org_1/airtable match Contacts.E-mail: no such field (did you mean Email?)"
    ]
    day = at_config({"evaluated_at": "TS Evaluated At"}, field_types={"evaluated_at": "date"})
    [line] = lines(day, at_schemas())
    assert "epoch milliseconds" in line
    leads = make_config("airtable", targets=[{"object": "Leads", "fields": {"score": "S"}}])
    assert lines(leads, at_schemas("Leads")) == [
        "org_1/airtable target Leads: no such table in the base"
    ]


def test_a_partial_values_map_is_rejected_before_any_schema_is_read(tmp_path: Path) -> None:
    """Validation refuses a partial map (invalid_field_options): check-config exits 2 on
    the config itself, and the comparison never sees it."""
    raw = sf_config({"score": "Rating"}, field_options={"score": {"values": {"hot": "Hot"}}})
    with pytest.raises(ConfigRejected) as caught:
        lines(raw, sf_schemas())
    assert caught.value.reason == "invalid_field_options"
    path = tmp_path / "config.json"
    path.write_bytes(orjson.dumps(raw))
    with pytest.raises(BadInput, match=r"invalid_field_options: .*does not cover 'warm', 'cold'"):
        load(path, None)
