"""`python -m service check-config` (issue 22, contract §4a) in a child process against
the three HTTPS sandboxes, each with a customer-like schema: a deliberately broken
config finds every kind of problem (exit 1), a good one passes (exit 0), bad input is
exit 2, and nothing it prints holds a token. Only read-only schema calls are made."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from devkit.factories import make_config
from devkit.sandboxes.airtable import DEFAULT_TABLES, AirtableSandbox, Column
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.properties import HsProperty
from devkit.sandboxes.salesforce import SalesforceSandbox
from devkit.sandboxes.salesforce.schema import SfField

EMAIL = {"crm_field": "Email", "event_field": "lead.email"}
RATING = SfField("picklist", 40, values=("Hot", "Warm", "Cold"), restricted=True)
SF_PROPENSITY = {
    "enabled": True,
    "object": "Account",
    "match": {"crm_field": "Website", "event_field": "lead.domain"},
    "field": "Rating",
}
HS_PROPENSITY = {
    "enabled": True,
    "object": "companies",
    "match": {"crm_field": "domain", "event_field": "lead.domain"},
    "field": "ts_tier",
}
GRADES = {"hot": "A", "warm": "B", "cold": "C"}


def broken_configs() -> list[dict[str, Any]]:
    salesforce = make_config(
        "salesforce",
        "org_bad",
        targets=[
            {
                "object": "Lead",
                "match": EMAIL,
                "fields": {
                    "score": "Rating",
                    "reasoning": "TS_Reasonning__c",
                    "evaluated_at": "TS_Evaluated_On__c",
                },
            },
            {
                "object": "Contact",
                "match": {**EMAIL, "crm_field": "Emial"},
                "fields": {"score": "TS_Locked__c"},
            },
        ],
        propensity={**SF_PROPENSITY, "values": {"high": "Hot", "medium": "Warm", "low": "Mild"}},
    )
    hubspot = make_config(
        "hubspot",
        "org_bad",
        targets=[
            {
                "object": "contacts",
                "match": {"crm_field": "email", "event_field": "lead.email"},
                "fields": {"score": "ts_grade", "reasoning": "ts_count", "evaluated_at": "ts_day"},
            }
        ],
        propensity={**HS_PROPENSITY, "field": "ts_formula"},
    )
    airtable = make_config(
        "airtable",
        "org_bad",
        targets=[
            {
                "object": "Contacts",
                "match": {**EMAIL, "crm_field": "E-mail"},
                "fields": {"score": "Grade", "evaluated_at": "Day"},
            },
            {"object": "Leads", "fields": {"score": "TS Score"}},
        ],
    )
    return [salesforce, hubspot, airtable]


def good_configs() -> list[dict[str, Any]]:
    values = {"score": {"values": {"hot": "Hot", "warm": "Warm", "cold": "Cold"}}}
    salesforce = make_config(
        "salesforce",
        "org_good",
        targets=[
            {
                "object": "Lead",
                "match": EMAIL,
                "fields": {
                    "score": "Rating",
                    "reasoning": "TS_Reasoning__c",
                    "evaluated_at": "TS_Evaluated_At__c",
                },
                "field_options": values,
                "create_if_missing": True,
            },
            {
                "object": "Contact",
                "match": EMAIL,
                "fields": {"evaluated_at": "TS_Evaluated_On__c"},
                "field_types": {"evaluated_at": "date"},
            },
        ],
        propensity={**SF_PROPENSITY, "values": {"high": "Hot", "medium": "Warm", "low": "Cold"}},
    )
    hs_target = {
        "object": "contacts",
        "match": {"crm_field": "email", "event_field": "lead.email"},
        "fields": {"score": "ts_grade", "evaluated_at": "ts_day"},
        "field_types": {"evaluated_at": "date"},
        "field_options": {"score": {"values": GRADES}},
    }
    hubspot = make_config("hubspot", "org_good", targets=[hs_target], propensity=HS_PROPENSITY)
    return [salesforce, hubspot, make_config("airtable", "org_good")]


async def check_config(
    config_file: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    unset = ("KAFKA_", "TOPIC_", "SECRETS_DIR", "DESTINATION_CA")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "check-config", "--config", str(config_file), *args,
        env={**clean, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def customer_schemas(sf: SalesforceSandbox, hs: HubSpotSandbox) -> None:
    sf.define("Lead", {"Rating": RATING, "TS_Evaluated_On__c": SfField("date", 0)})
    sf.define("Contact", {"TS_Locked__c": SfField("string", 80, updateable=False),
                          "TS_Evaluated_On__c": SfField("date", 0)})  # fmt: skip
    sf.define("Account", {"Rating": RATING})
    hs.define("contacts", "ts_grade", HsProperty("enumeration", options=("A", "B", "C")))
    hs.define("contacts", "ts_day", HsProperty("date"))
    hs.define("contacts", "ts_count", HsProperty("number"))
    hs.define("companies", "ts_tier", HsProperty("string"))
    hs.define("companies", "ts_formula", HsProperty("string", read_only=True))


AIRTABLE_TABLES = {
    **DEFAULT_TABLES,
    "Contacts": {
        **DEFAULT_TABLES["Contacts"],
        "Grade": Column("singleSelect", ("A", "B", "C")),
        "Day": Column("date"),
    },
}
EXPECTED = [
    "org_bad/salesforce target Lead.Rating: score: 'hot', 'warm', 'cold' would be refused by "
    "this picklist field (allowed: [Hot, Warm, Cold]); map them with field_options.score.values",
    "org_bad/salesforce target Lead.TS_Reasonning__c: reasoning: no such field "
    "(did you mean TS_Reasoning__c?)",
    "org_bad/salesforce target Lead.TS_Evaluated_On__c: evaluated_at: a Date field: Salesforce "
    "refuses a date-time there (set field_types.evaluated_at: date to write the day, or use a "
    "DateTime field)",
    "org_bad/salesforce match Contact.Emial: no such field (did you mean Email?)",
    "org_bad/salesforce target Contact.TS_Locked__c: score: the field is read-only",
    "org_bad/salesforce propensity Account.Rating: propensity: the values map writes 'Mild', "
    "not allowed by this field (allowed: [Hot, Warm, Cold])",
    "org_bad/hubspot target contacts.ts_grade: score: 'hot', 'warm', 'cold' would be refused "
    "by this enumeration field (allowed: [A, B, C]); map them with field_options.score.values",
    "org_bad/hubspot target contacts.ts_count: reasoning: a number field cannot take free text",
    "org_bad/hubspot target contacts.ts_day: evaluated_at: a date property: HubSpot refuses a "
    "date-time there (set field_types.evaluated_at: date to write midnight UTC, or use a "
    "datetime property)",
    "org_bad/hubspot propensity companies.ts_formula: propensity: the field is read-only",
    "org_bad/airtable match Contacts.E-mail: no such field (did you mean Email?)",
    "org_bad/airtable target Contacts.Grade: score: 'hot', 'warm', 'cold' would be refused by "
    "this singleSelect field (allowed: [A, B, C]); map them with field_options.score.values",
    "org_bad/airtable target Contacts.Day: evaluated_at: a date field: Airtable keeps the day "
    "only and the time of evaluation is lost (use a dateTime field)",
    "org_bad/airtable target Leads: no such table in the base",
    "check-config: 14 problem(s) in 3 of 3 config(s); each would make deliveries fail",
]


async def test_check_config_finds_each_problem_and_passes_a_good_config(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    async with (
        SalesforceSandbox(tmp_path) as sf,
        HubSpotSandbox(tmp_path) as hs,
        AirtableSandbox(tmp_path, tables=AIRTABLE_TABLES) as at,
    ):
        customer_schemas(sf, hs)
        for org in ("org_bad", "org_good", "org_locked"):
            for name, sandbox in (("salesforce", sf), ("hubspot", hs), ("airtable", at)):
                creds = sandbox.credentials()
                if org == "org_locked":
                    creds = {**creds, "access_token": "00DWRONG!token", "api_key": "patWRONG.x"}
                (secrets / f"{org}-{name}.json").write_bytes(orjson.dumps(creds))
        broken, good = tmp_path / "broken.yaml", tmp_path / "good.json"
        broken.write_text(yaml.safe_dump(broken_configs(), sort_keys=False))
        good.write_bytes(orjson.dumps([*good_configs(), *broken_configs()]))
        locked = tmp_path / "locked.json"
        locked.write_bytes(orjson.dumps(make_config("salesforce", "org_locked")))
        env = {"SECRETS_DIR": str(secrets), "DESTINATION_CA_FILE": str(sf.ca_file)}
        bad = await check_config(broken, env=env)
        fine = await check_config(good, "--org", "org_good", env=env)
        refused = await check_config(locked, env=env)
        writes = [c for c in sf.calls if c.method != "GET"] + [
            h for h in at.hits if h.method != "GET"
        ]
        hubspot_calls = {(c.method, c.path) for c in hs.calls}
    assert (bad[0], bad[2]) == (1, "")
    assert bad[1].splitlines() == EXPECTED
    assert fine == (0, "check-config: 3 config(s) checked, nothing would fail\n", "")
    code, out, err = refused
    assert (code, err) == (1, "")
    assert out.startswith(
        "org_locked/salesforce schema: cannot be read: salesforce answered HTTP 401: "
        "INVALID_SESSION_ID: Session expired or invalid"
    )
    assert "WRONG" not in out  # no token is ever printed
    assert writes == []  # read-only: describe and the base schema are GETs
    assert {m for m, _ in hubspot_calls} == {"GET"}
    assert {p for _, p in hubspot_calls} == {
        "/crm/v3/properties/contacts",
        "/crm/v3/properties/companies",
    }


async def test_bad_input_is_exit_2_and_help_needs_no_settings(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    env = {"SECRETS_DIR": str(secrets)}
    rejected = tmp_path / "rejected.json"
    rejected.write_bytes(orjson.dumps([make_config(updated_by={"user_id": "u", "role": "viewer"})]))
    garbled, good = tmp_path / "garbled.yaml", tmp_path / "good.json"
    garbled.write_text("- [unclosed")
    good.write_bytes(orjson.dumps([make_config()]))
    role = await check_config(rejected, env=env)
    syntax = await check_config(garbled, env=env)
    other_org = await check_config(good, "--org", "org_9", env=env)
    no_secrets = await check_config(good, env={"SECRETS_DIR": str(tmp_path / "missing")})
    missing = await check_config(tmp_path / "nope.json", env=env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "check-config", "--help",
        env={"PATH": os.environ.get("PATH", "")}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    help_text, _ = await proc.communicate()
    assert role == (
        2,
        "",
        "check-config: invalid config (entry 0): unauthorized_role: role 'viewer' may not save\n",
    )
    assert syntax[0] == 2 and syntax[2].startswith("check-config: cannot read config")
    assert other_org[0] == 2 and "no config for org 'org_9'" in other_org[2]
    assert no_secrets[0] == 2 and "SECRETS_DIR" in no_secrets[2]
    assert missing[0] == 2 and "nope.json" in missing[2]
    assert proc.returncode == 0 and b"--org ORG" in help_text
