"""`python -m service preview` (issue 14): run as a customer admin would, in a child
process with no Kafka settings; with --lookup, against the three HTTPS sandboxes."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from devkit.factories import make_config, make_event
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.salesforce import SalesforceSandbox

SF_TARGET = {
    "object": "Lead",
    "match": {"crm_field": "Email", "event_field": "lead.email"},
    "fields": {"score": "TS_Score__c", "reasoning": "TS_Reasoning__c"},
    "max_lengths": {"reasoning": 10},
    "create_if_missing": True,
}
PROPENSITY = {
    "enabled": True,
    "object": "Account",
    "match": {"crm_field": "Website", "event_field": "lead.domain"},
    "field": "TS_Propensity__c",
}


async def preview(
    tmp: Path, configs: Any, event: Any, *args: str, **env: str
) -> tuple[int, str, str]:
    config_file, event_file = tmp / "config.json", tmp / "event.json"
    config_file.write_bytes(orjson.dumps(configs))
    event_file.write_bytes(event if isinstance(event, bytes) else orjson.dumps(event))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "TOPIC_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "preview",
        "--config", str(config_file), "--event", str(event_file), *args,
        env={**clean, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_prints_the_exact_values_without_a_broker(tmp_path: Path) -> None:
    cfg = make_config("salesforce", targets=[SF_TARGET], propensity=PROPENSITY)
    event = make_event(email="ada@example.com", reasoning="A long reasoning text", propensity=None)
    code, out, err = await preview(tmp_path, cfg, event)
    assert (code, err) == (0, "")
    [shown] = orjson.loads(out)
    [lead] = shown["targets"]
    assert lead["record"] == {"by": "match", "field": "Email", "value": "ada@example.com"}
    assert lead["fields"] == {"TS_Score__c": "hot", "TS_Reasoning__c": "A long rea"}
    assert lead["truncated"] == ["reasoning"] and lead["Sforce-Auto-Assign"] == "FALSE"
    assert lead["if_not_found"]["create"]["LastName"] == "Lovelace"
    assert shown["propensity"]["note"].startswith("the event has no propensity")


async def test_a_bad_config_or_event_is_one_line_and_exit_2(tmp_path: Path) -> None:
    viewer = make_config("salesforce", updated_by={"user_id": "u", "role": "viewer"})
    code, out, err = await preview(tmp_path, viewer, make_event())
    assert (code, out) == (2, "") and "unauthorized_role" in err and err.count("\n") == 1
    code, out, err = await preview(tmp_path, make_config("salesforce"), b'{"schema_version": 1')
    assert (code, out) == (2, "") and "invalid event: invalid_json" in err
    airtable = make_config("airtable", propensity=PROPENSITY)
    code, _, err = await preview(tmp_path, airtable, make_event())
    assert code == 2 and "propensity" in err


async def test_lookup_finds_the_records_with_read_only_calls(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    async with (
        SalesforceSandbox(tmp_path) as sf,
        HubSpotSandbox(tmp_path) as hs,
        AirtableSandbox(tmp_path) as at,
    ):
        [lead] = sf.seed("Lead", {"LastName": "L", "Company": "C", "Email": "ada@example.com"})
        [account] = sf.seed("Account", {"Name": "AE", "Website": "analytical.example"})
        contact = hs.seed("contacts", email="ada@example.com")
        company = hs.seed("companies", name="AE", domain="analytical.example")
        [row] = at.seed("Contacts", [{"Email": "ada@example.com"}])
        for name, sandbox in (("salesforce", sf), ("hubspot", hs), ("airtable", at)):
            (secrets / f"org_1-{name}.json").write_bytes(orjson.dumps(sandbox.credentials()))
        configs = [
            make_config("salesforce", targets=[SF_TARGET], propensity=PROPENSITY),
            make_config(
                "hubspot",
                propensity={
                    **PROPENSITY,
                    "object": "companies",
                    "match": {"crm_field": "domain", "event_field": "lead.domain"},
                    "field": "ts_propensity",
                },
            ),
            make_config("airtable"),
        ]
        code, out, err = await preview(
            tmp_path, configs, make_event(email="ada@example.com"), "--lookup",
            SECRETS_DIR=str(secrets), DESTINATION_CA_FILE=str(sf.ca_file),
        )  # fmt: skip
        writes = [c for c in sf.calls if c.method != "GET"] + [
            h for h in at.hits if h.method != "GET"
        ]
        hubspot_paths = {c.path for c in hs.calls}
    assert (code, err) == (0, "")
    by_destination = {p["destination"]: p for p in orjson.loads(out)}
    salesforce, hubspot, airtable = (
        by_destination[d] for d in ("salesforce", "hubspot", "airtable")
    )
    assert salesforce["targets"][0]["matched"] == [lead]
    assert salesforce["propensity"]["matched"] == [account]
    assert hubspot["targets"][0]["matched"] == [contact]
    assert hubspot["propensity"]["matched"] == [company]
    assert airtable["targets"][0]["matched"] == [row]
    assert writes == []  # read-only: GETs, and HubSpot's reading POSTs only
    assert hubspot_paths <= {
        "/crm/v3/objects/contacts/batch/read",
        "/crm/v3/objects/companies/search",
    }


async def test_a_lookup_without_credentials_is_exit_1(tmp_path: Path) -> None:
    empty = tmp_path / "secrets"
    empty.mkdir()
    code, out, err = await preview(
        tmp_path, make_config("salesforce"), make_event(), "--lookup", SECRETS_DIR=str(empty)
    )
    assert (code, out) == (1, "") and "org_1-salesforce' is not mounted" in err
