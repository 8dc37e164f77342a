"""simple-salesforce, unchanged, against the HTTPS sandbox: the sandbox speaks the real
wire format (paths, bodies, errors, headers), and the service's SDK builder trusts
DESTINATION_CA_FILE. The SDK is synchronous, so it runs in threads here too."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

from devkit.sandboxes.salesforce import SalesforceSandbox
from devkit.sdk_builders.salesforce import sdk_client
from service.destinations.http import ssl_context


@pytest.fixture(autouse=True)
def trust_the_sandbox(sandbox: SalesforceSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests honours REQUESTS_CA_BUNDLE (over session.verify); set it for this test only.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_file))


def plain_sdk(sandbox: SalesforceSandbox, token: str | None = None) -> Salesforce:
    """The SDK exactly as a user would build it, with its own requests session."""
    creds = sandbox.credentials()
    return Salesforce(
        instance_url=creds["instance_url"],
        session_id=token or creds["access_token"],
        version=creds["api_version"],
    )


async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_sdk_crud_query_and_upsert(sandbox: SalesforceSandbox) -> None:
    sf = plain_sdk(sandbox)
    try:
        created = await run(
            sf.Lead.create, {"LastName": "Lovelace", "Company": "AE", "Email": "Ada@x.example"}
        )
        assert created["success"] is True and created["id"].startswith("00Q")
        assert await run(sf.Lead.update, created["id"], {"TS_Score__c": "hot"}) == 204
        record = await run(sf.Lead.get, created["id"])
        assert (record["TS_Score__c"], record["attributes"]["type"]) == ("hot", "Lead")
        soql = format_soql("SELECT Id, Email FROM Lead WHERE Email = {}", "ada@X.example")
        found = await run(sf.query, soql)
        assert found["totalSize"] == 1 and found["records"][0]["Id"] == created["id"]
        assert sf.api_usage["api-usage"] == (
            sandbox.api_used,
            sandbox.api_limit,
        )  # Sforce-Limit-Info
        assert (
            await run(sf.Lead.upsert, "TS_Lead_Id__c/lead-7", {"LastName": "B", "Company": "C"})
            == 201
        )
        assert await run(sf.Lead.upsert, "TS_Lead_Id__c/lead-7", {"TS_Score__c": "cold"}) == 200
        by_ext = await run(sf.Lead.get_by_custom_id, "TS_Lead_Id__c", "lead-7")
        assert by_ext["TS_Score__c"] == "cold"
        described = await run(sf.Lead.describe)
        assert {"Email", "TS_Reasoning__c"} <= {f["name"] for f in described["fields"]}
        await run(sf.Lead.delete, created["id"])
        with pytest.raises(SalesforceResourceNotFound):
            await run(sf.Lead.get, created["id"])
    finally:
        sf.session.close()


async def test_sdk_collections_and_paging(sandbox: SalesforceSandbox) -> None:
    sandbox.api.page_size = 2
    sf = plain_sdk(sandbox)
    try:
        records = [{"attributes": {"type": "Contact"}, "LastName": f"C{i}"} for i in range(5)]
        records.append({"attributes": {"type": "Contact"}, "FirstName": "no last name"})
        saved = await run(
            sf.restful,
            "composite/sobjects",
            method="POST",
            json={"allOrNone": False, "records": records},
        )
        assert [r["success"] for r in saved] == [True] * 5 + [False]
        assert saved[5]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
        everything = await run(sf.query_all, "SELECT Id, LastName FROM Contact")
        assert everything["totalSize"] == 5 and len(everything["records"]) == 5
        too_many = [{"attributes": {"type": "Contact"}, "LastName": "x"}] * 201
        with pytest.raises(SalesforceMalformedRequest) as caught:
            await run(sf.restful, "composite/sobjects", method="POST", json={"records": too_many})
        assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
        updates = [{"attributes": {"type": "Contact"}, "id": saved[0]["id"], "LastName": "Z"}]
        updates.append(
            {"attributes": {"type": "Contact"}, "id": saved[1]["id"], "LastName": "x" * 81}
        )
        rolled = await run(
            sf.restful,
            "composite/sobjects",
            method="PATCH",
            json={"allOrNone": True, "records": updates},
        )
        assert [r["errors"][0]["statusCode"] for r in rolled] == [
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "STRING_TOO_LONG",
        ]
        assert sandbox.records("Contact")[saved[0]["id"]]["LastName"] == "C0"
    finally:
        sf.session.close()


async def test_sdk_sees_real_error_bodies(sandbox: SalesforceSandbox) -> None:
    wrong = plain_sdk(sandbox, token="00Dwrong!token")
    sf = plain_sdk(sandbox)
    try:
        with pytest.raises(SalesforceExpiredSession) as expired:
            await run(wrong.query, "SELECT Id FROM Lead")
        assert expired.value.content == [
            {
                "message": "Session expired or invalid",
                "errorCode": "INVALID_SESSION_ID",
                "fields": [],
            }
        ]
        with pytest.raises(SalesforceMalformedRequest) as invalid:
            await run(sf.query, "SELECT Id, Nope__c FROM Lead")
        assert invalid.value.content[0]["errorCode"] == "INVALID_FIELD"
        with pytest.raises(SalesforceMalformedRequest) as malformed:
            await run(sf.query, "SELECT Id FROM Lead WHERE Email = 'unterminated")
        assert malformed.value.content[0]["errorCode"] == "MALFORMED_QUERY"
        sandbox.fail(403, times=1)
        with pytest.raises(SalesforceRefusedRequest) as refused:
            await run(sf.query, "SELECT Id FROM Lead")
        assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    finally:
        wrong.session.close()
        sf.session.close()


async def test_service_sdk_builder_trusts_the_ca_file(sandbox: SalesforceSandbox) -> None:
    sandbox.seed("Account", {"Name": "Analytical", "Website": "analytical.example"})
    sf = sdk_client(sandbox.credentials(), sandbox.ca_file)
    try:
        answer = await run(
            sf.query, "SELECT Id, Name FROM Account WHERE Website = 'analytical.example'"
        )
        assert [r["Name"] for r in answer["records"]] == ["Analytical"]
    finally:
        sf.session.close()
    untrusted = sdk_client(sandbox.credentials(), None)  # system CAs only: the sandbox is refused
    untrusted.session.trust_env = False  # ignore the test's REQUESTS_CA_BUNDLE
    try:
        with pytest.raises(requests.exceptions.SSLError):
            await run(untrusted.query, "SELECT Id FROM Account")
    finally:
        untrusted.session.close()


async def test_records_view_and_fault_endpoints(sandbox: SalesforceSandbox) -> None:
    [rid] = sandbox.seed("Lead", {"LastName": "L", "Company": "C", "TS_Score__c": "warm"})
    connector = aiohttp.TCPConnector(ssl=ssl_context(sandbox.ca_file))
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(f"{sandbox.base_url}/_sandbox/records") as resp:
            view = await resp.json()
        assert view["Lead"][0]["Id"] == rid and view["Lead"][0]["TS_Score__c"] == "warm"
        fault = {"status": 503, "times": 1}
        async with http.post(f"{sandbox.base_url}/_sandbox/faults", json=fault) as resp:
            assert resp.status == 204
        url = f"{sandbox.base_url}/services/data/v62.0/sobjects/Lead/{rid}"
        auth = {"Authorization": f"Bearer {sandbox.token}"}
        async with http.get(url, headers=auth) as resp:
            assert (
                resp.status == 503 and (await resp.json())[0]["errorCode"] == "SERVER_UNAVAILABLE"
            )
        async with http.get(url, headers=auth) as resp:
            assert resp.status == 200 and resp.headers["Sforce-Limit-Info"].startswith("api-usage=")
