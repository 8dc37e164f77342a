"""Contract §4a end to end (issue 22): the real service on a real broker, each CRM's
HTTPS sandbox with a customer-like schema, one org per option:

- `map`: a picklist / enumeration / single-select score with a values map is written
  with the mapped value (and, in Salesforce, the propensity through its map);
- `raw`: the same field without a map; the field allows `hot` and `warm` but not
  `cold`: the `cold` lead fails `invalid_value` at once (one attempt, never retried),
  naming the field and the value, while the rest of its batch is delivered;
- `keep`: `write: if_empty` keeps a reasoning a rep typed and fills an empty one;
- Salesforce only: a duplicate rule (allow with an alert) with `on_duplicate: fail`
  (`duplicate_detected`, the rule's message) and `allow` (saved, header sent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devkit.factories import DEFAULT_TARGETS, make_config, make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.airtable import DEFAULT_TABLES, AirtableSandbox, Column
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.properties import HsProperty
from devkit.sandboxes.hubspot.testing import CONTACTS
from devkit.sandboxes.salesforce import SalesforceSandbox
from devkit.sandboxes.salesforce.schema import SfField

PICKLIST = {"hot": "Hot", "warm": "Warm", "cold": "Cold"}
LEVELS = {"high": "Hot", "medium": "Warm", "low": "Cold"}
ALLOWED = ("Hot", "Warm", "Cold", "hot", "warm")  # no lower-case "cold"
SCORES = ("hot", "warm", "cold")
REP = "Typed by a rep: call back in May"
KEEP = {"reasoning": {"write": "if_empty"}}
ENV = {"BATCH_LINGER_MS": "300"}  # each org's three leads in one batch


def tls(tmp_path: Path) -> Path:
    (tmp_path / "tls").mkdir()
    return tmp_path / "tls"


def of(h: ServiceHarness, event: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in h.statuses if s["event_id"] == event["event_id"]]


def outcome(h: ServiceHarness, event: dict[str, Any]) -> tuple[str, str | None]:
    [status] = of(h, event)  # exactly one status: terminal at once, never `retrying`
    return status["status"], (status.get("error") or {}).get("code") or status.get("reason")


async def run(h: ServiceHarness, configs: list[dict[str, Any]], events: list[Any]) -> None:
    for config in configs:
        await h.put_config(config)
    for event in events:
        await h.send_event(event)
    await h.wait_statuses(len(events), 90)


def assert_refused_cold(h: ServiceHarness, raw: list[dict[str, Any]], field: str) -> None:
    """The `raw` org's hot and warm leads delivered, its cold one failed at once."""
    assert [outcome(h, e) for e in raw] == [
        ("delivered", None), ("delivered", None), ("failed", "invalid_value"),
    ]  # fmt: skip
    [failed] = of(h, raw[2])
    assert failed["attempts"] == 1 and failed["error"]["retryable"] is False
    assert f"'cold' for {field}" in failed["error"]["message"]


async def test_salesforce_values_maps_if_empty_and_duplicate_rules(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rating = SfField("picklist", 40, values=ALLOWED, restricted=True)
    async with SalesforceSandbox(tls(tmp_path)) as sf:
        sf.define("Lead", {"Rating": rating})
        sf.define("Account", {"Rating": SfField("picklist", 40, values=ALLOWED, restricted=True)})
        rule = sf.duplicate_rule("Lead", "Company", action="allow", message="Possible dup lead")
        for org in ("map", "raw"):
            for score in SCORES:
                sf.seed("Lead", {"LastName": "L", "Company": f"{org} {score}",
                                 "Email": f"{score}@{org}.example"})  # fmt: skip
        [account] = sf.seed("Account", {"Name": "Map", "Website": "map.example"})
        [kept, filled] = sf.seed(
            "Lead",
            {"LastName": "K", "Company": "K1", "Email": "a@keep.example", "TS_Reasoning__c": REP},
            {"LastName": "K", "Company": "K2", "Email": "b@keep.example"},
        )
        sf.seed("Lead", {"LastName": "D", "Company": "Dup Corp", "Email": "first@dup.example"})
        lead = DEFAULT_TARGETS["salesforce"][0]
        rated = {**lead, "fields": {"score": "Rating"}}
        propensity = {"enabled": True, "object": "Account", "field": "Rating", "values": LEVELS,
                      "match": {"crm_field": "Website", "event_field": "lead.domain"}}  # fmt: skip
        dup = {**lead, "create_if_missing": True}
        configs = [
            make_config("salesforce", "org_map", propensity=propensity,
                        targets=[{**rated, "field_options": {"score": {"values": PICKLIST}}}]),
            make_config("salesforce", "org_raw", targets=[rated]),
            make_config("salesforce", "org_keep", targets=[{**lead, "field_options": KEEP}]),
            make_config("salesforce", "org_dupfail", targets=[{**dup, "on_duplicate": "fail"}]),
            make_config("salesforce", "org_dupallow", targets=[{**dup, "on_duplicate": "allow"}]),
        ]  # fmt: skip
        mapped = [make_event("org_map", email=f"{s}@map.example", score=s, domain="map.example",
                             propensity="medium") for s in SCORES]  # fmt: skip
        raw = [make_event("org_raw", email=f"{s}@raw.example", score=s) for s in SCORES]
        keep = [make_event("org_keep", email=f"{x}@keep.example") for x in "ab"]
        dupes = [make_event(org, email=f"{org}@dup.example", company="Dup Corp")
                 for org in ("org_dupfail", "org_dupallow")]  # fmt: skip
        env = {"DESTINATION_CA_FILE": str(sf.ca_file), **ENV}
        async with ServiceHarness(kafka_bootstrap, tmp_path, env=env) as h:
            for config in configs:
                h.write_secret(config["integration"]["credentials_ref"], sf.credentials())
            await run(h, configs, [*mapped, *raw, *keep, *dupes])
            records = {r["Email"]: r for r in sf.records("Lead").values()}
            assert [outcome(h, e) for e in mapped] == [("delivered", None)] * 3
            assert [records[f"{s}@map.example"]["Rating"] for s in SCORES] == [
                "Hot",
                "Warm",
                "Cold",
            ]
            assert sf.records("Account")[account]["Rating"] == "Warm"  # propensity medium
            assert_refused_cold(h, raw, "Lead.Rating")
            assert records["cold@raw.example"].get("Rating") is None
            assert records["hot@raw.example"]["Rating"] == "hot"
            assert [outcome(h, e) for e in keep] == [("delivered", None)] * 2
            leads = sf.records("Lead")
            assert leads[kept]["TS_Reasoning__c"] == REP
            assert leads[filled]["TS_Reasoning__c"] == keep[1]["evaluation"]["reasoning"]
            assert h.metric("if_empty_reads_total", destination="salesforce") == 0
            assert outcome(h, dupes[0]) == ("failed", "duplicate_detected")
            [blocked] = of(h, dupes[0])
            assert "Possible dup lead" in blocked["error"]["message"]
            assert outcome(h, dupes[1]) == ("delivered", None)
            assert "org_dupallow@dup.example" in {r["Email"] for r in sf.records("Lead").values()}
            assert "org_dupfail@dup.example" not in {
                r["Email"] for r in sf.records("Lead").values()
            }
            headers = {
                c.duplicate_header for c in sf.calls if c.path.endswith("/composite/sobjects")
            }
            assert headers == {None, "allowSave=true"}
            assert rule.matches  # the rule did see the duplicates


async def test_hubspot_values_maps_and_if_empty(kafka_bootstrap: str, tmp_path: Path) -> None:
    async with HubSpotSandbox(tls(tmp_path)) as hs:
        hs.define(
            "contacts",
            "ts_grade",
            HsProperty("enumeration", options=("A", "B", "C", "hot", "warm")),
        )
        for org in ("map", "raw"):
            for score in SCORES:
                hs.seed("contacts", email=f"{score}@{org}.example")
        hs.seed("contacts", email="a@keep.example", ts_reasoning=REP)
        hs.seed("contacts", email="b@keep.example")
        graded = {**CONTACTS, "fields": {"score": "ts_grade"}, "create_if_missing": False}
        grades = {"hot": "A", "warm": "B", "cold": "C"}
        configs = [
            make_config("hubspot", "org_map",
                        targets=[{**graded, "field_options": {"score": {"values": grades}}}]),
            make_config("hubspot", "org_raw", targets=[graded]),
            make_config("hubspot", "org_keep", targets=[{**CONTACTS, "field_options": KEEP}]),
        ]  # fmt: skip
        mapped = [make_event("org_map", email=f"{s}@map.example", score=s) for s in SCORES]
        raw = [make_event("org_raw", email=f"{s}@raw.example", score=s) for s in SCORES]
        keep = [make_event("org_keep", email=f"{x}@keep.example") for x in "ab"]
        env = {"DESTINATION_CA_FILE": str(hs.ca_file), **ENV}
        async with ServiceHarness(kafka_bootstrap, tmp_path, env=env) as h:
            for config in configs:
                h.write_secret(config["integration"]["credentials_ref"], hs.credentials())
            await run(h, configs, [*mapped, *raw, *keep])
            assert [outcome(h, e) for e in mapped] == [("delivered", None)] * 3
            grade = [hs.find("contacts", "email", f"{s}@map.example") for s in SCORES]
            assert [r.properties.get("ts_grade") for r in grade if r] == ["A", "B", "C"]
            assert_refused_cold(h, raw, "the property ts_grade")
            cold = hs.find("contacts", "email", "cold@raw.example")
            assert cold is not None and "ts_grade" not in cold.properties
            # the refused batch carried the others too; they were sent again without it
            assert any(c.status == 400 and c.inputs > 1 for c in hs.calls)
            assert [outcome(h, e) for e in keep] == [("delivered", None)] * 2
            a, b = (hs.find("contacts", "email", f"{x}@keep.example") for x in "ab")
            assert a is not None and a.properties["ts_reasoning"] == REP
            assert (
                b is not None and b.properties["ts_reasoning"] == keep[1]["evaluation"]["reasoning"]
            )
            assert h.metric("if_empty_reads_total", destination="hubspot") >= 1  # by email


async def test_airtable_values_maps_and_if_empty(kafka_bootstrap: str, tmp_path: Path) -> None:
    contacts = {**DEFAULT_TABLES["Contacts"], "Grade": Column("singleSelect", ALLOWED)}
    tables = {**DEFAULT_TABLES, "Contacts": contacts}
    async with AirtableSandbox(tls(tmp_path), rate_limit=1000, tables=tables) as at:
        bases = {org: f"app{org.upper():0<14}"[:17] for org in ("map", "raw", "keep")}
        base = DEFAULT_TARGETS["airtable"][0]
        reasoning = base["fields"]["reasoning"]
        [kept, filled] = at.seed(
            "Contacts", [{"Email": "a@keep.example", reasoning: REP}, {"Email": "b@keep.example"}],
            base_id=bases["keep"],
        )  # fmt: skip
        graded = {**base, "fields": {"score": "Grade"}}
        configs = [
            make_config("airtable", "org_map",
                        targets=[{**graded, "field_options": {"score": {"values": PICKLIST}}}]),
            make_config("airtable", "org_raw", targets=[graded]),
            make_config("airtable", "org_keep", targets=[{**base, "field_options": KEEP}]),
        ]  # fmt: skip
        mapped = [make_event("org_map", email=f"{s}@map.example", score=s) for s in SCORES]
        raw = [make_event("org_raw", email=f"{s}@raw.example", score=s) for s in SCORES]
        keep = [make_event("org_keep", email=f"{x}@keep.example") for x in "ab"]
        env = {"DESTINATION_CA_FILE": str(at.ca_file), **ENV}
        async with ServiceHarness(kafka_bootstrap, tmp_path, env=env) as h:
            for config, org in zip(configs, bases, strict=True):
                ref = config["integration"]["credentials_ref"]
                h.write_secret(ref, at.credentials(base_id=bases[org]))
            await run(h, configs, [*mapped, *raw, *keep])
            assert [outcome(h, e) for e in mapped] == [("delivered", None)] * 3
            rows = {r["fields"]["Email"]: r["fields"] for r in at.table("Contacts", bases["map"])}
            assert [rows[f"{s}@map.example"]["Grade"] for s in SCORES] == ["Hot", "Warm", "Cold"]
            assert_refused_cold(h, raw, "Contacts.Grade")
            emails = {r["fields"]["Email"] for r in at.table("Contacts", bases["raw"])}
            assert emails == {"hot@raw.example", "warm@raw.example"}
            assert max(hit.records for hit in at.calls(status=422)) > 1  # split, then written
            assert [outcome(h, e) for e in keep] == [("delivered", None)] * 2
            cells = {r["id"]: r["fields"] for r in at.table("Contacts", bases["keep"])}
            assert cells[kept][reasoning] == REP
            assert cells[filled][reasoning] == keep[1]["evaluation"]["reasoning"]
            # the upserts had no lookup: one read by the match column, for both leads
            assert h.metric("if_empty_reads_total", destination="airtable") == 1
