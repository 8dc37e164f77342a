"""A garbled CRM answer end to end (issue 19, finding 2): the real service on a real
broker, each CRM's HTTPS sandbox answering with the malformed shapes of the issue
(Salesforce `{"success": false, "errors": null}`, HubSpot `"errors": 1` with ids
as numbers, Airtable `"fields": null`). The delivery goes `retrying` with
`bad_response` and then `delivered`, or `failed` with `bad_response` once its
attempts are spent; the process keeps running, healthy and ready, and no record
is created twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from devkit.factories import DEFAULT_TARGETS, make_config, make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import hubspot_config
from devkit.sandboxes.salesforce import SalesforceSandbox

EMAIL = "ada@example.com"


def tls(tmp_path: Path) -> Path:
    (tmp_path / "tls").mkdir()
    return tmp_path / "tls"


def trail(h: ServiceHarness, event: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in h.statuses if s["event_id"] == event["event_id"]]


async def final(h: ServiceHarness, event: dict[str, Any]) -> list[dict[str, Any]]:
    await h.wait_until(
        lambda: any(s["status"] != "retrying" for s in trail(h, event)), 60, "a terminal status"
    )
    return trail(h, event)


async def assert_healthy(h: ServiceHarness) -> None:
    assert not h._tasks[0].done(), "the service stopped"
    base = f"http://127.0.0.1:{h.service.http.port}"
    async with aiohttp.ClientSession() as session:
        for probe in ("healthz", "readyz"):
            async with session.get(f"{base}/{probe}") as resp:
                assert resp.status == 200, probe


def codes(statuses: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(s["status"], (s.get("error") or {}).get("code")) for s in statuses]


async def test_salesforce_null_errors_retry_then_deliver(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with SalesforceSandbox(tls(tmp_path)) as sf:
        sf.seed("Lead", {"LastName": "L", "Company": "C", "Email": EMAIL})
        sf.garble("null_errors", path="/composite/sobjects", times=2)
        env = {"DESTINATION_CA_FILE": str(sf.ca_file)}
        async with ServiceHarness(kafka_bootstrap, tmp_path, env=env) as h:
            h.write_secret("org_1-salesforce", sf.credentials())
            await h.put_config(make_config("salesforce"))
            event = make_event(email=EMAIL)
            await h.send_event(event)
            statuses = await final(h, event)
            await assert_healthy(h)
        assert codes(statuses) == [("retrying", "bad_response")] * 2 + [("delivered", None)]
        assert len(sf.records("Lead")) == 1


async def test_hubspot_wrong_types_retry_then_deliver(kafka_bootstrap: str, tmp_path: Path) -> None:
    async with HubSpotSandbox(tls(tmp_path)) as hs:
        hs.seed("contacts", email=EMAIL, firstname="Ada")
        hs.garble("wrong_types", path="/batch/upsert", times=1)  # "errors": 1, "id": 12345
        env = {"DESTINATION_CA_FILE": str(hs.ca_file)}
        async with ServiceHarness(kafka_bootstrap, tmp_path, env=env) as h:
            h.write_secret("org_1-hubspot", hs.credentials())
            await h.put_config(hubspot_config(propensity=False))
            event = make_event(email=EMAIL)
            await h.send_event(event)
            statuses = await final(h, event)
            await assert_healthy(h)
        assert codes(statuses) == [("retrying", "bad_response"), ("delivered", None)]
        assert len(hs.records("contacts")) == 1


async def test_airtable_null_fields_fail_as_bad_response(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with AirtableSandbox(tls(tmp_path), rate_limit=1000) as at:
        at.seed("Contacts", [{"Email": EMAIL}])
        at.garble("null_fields", path="/v0/", method="GET", times=100)  # every lookup
        env = {"DESTINATION_CA_FILE": str(at.ca_file), "MAX_ATTEMPTS": "2"}
        async with ServiceHarness(kafka_bootstrap, tmp_path, env=env) as h:
            h.write_secret("org_1-airtable", at.credentials())
            lookup_only = {**DEFAULT_TARGETS["airtable"][0], "create_if_missing": False}
            await h.put_config(make_config("airtable", targets=[lookup_only]))
            event = make_event(email=EMAIL)
            await h.send_event(event)
            statuses = await final(h, event)
            await assert_healthy(h)
        assert codes(statuses) == [("retrying", "bad_response"), ("failed", "bad_response")]
        assert statuses[-1]["error"]["retryable"] is True  # attempts spent, not refused
        assert len(at.table("Contacts")) == 1  # never taken as a miss
