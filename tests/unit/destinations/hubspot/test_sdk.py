"""hubspot-api-client itself drives the sandbox: same paths, bodies and errors.

The SDK is synchronous, so it runs in a thread (the sandbox serves on this
test's event loop); it trusts the sandbox CA through `ssl_ca_cert`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInputForCreate,
)

from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.budget import limit_body
from devkit.sdk_builders.hubspot import close_apis, sdk_client


async def test_the_sdk_reads_and_writes_the_sandbox(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path) as hs:
        cid = hs.seed("companies", name="SDK Ltd", domain="sdk.example")
        client = sdk_client(hs.credentials(), hs.ca_file, tmp_path)
        crm = client.crm  # each *_api access builds a client: take them once, close them after
        basic, batch, companies = crm.contacts.basic_api, crm.contacts.batch_api, crm.companies
        search, company_batch = companies.search_api, companies.batch_api

        def scenario() -> dict[str, Any]:
            try:
                return steps()
            finally:
                close_apis(basic, batch, search, company_batch)

        def steps() -> dict[str, Any]:
            made = basic.create(
                SimplePublicObjectInputForCreate(properties={"email": "one@sdk.example"})
            )
            got = basic.get_by_id(made.id, properties=["email", "ts_score"])
            upsert = BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[
                    SimplePublicObjectBatchInputUpsert(
                        id_property="email", id=email, properties={"ts_score": "hot"}
                    )
                    for email in ("one@sdk.example", "two@sdk.example")
                ]
            )
            upserted = batch.upsert(upsert)
            read = batch.read(
                BatchReadInputSimplePublicObjectId(
                    id_property="email",
                    inputs=[SimplePublicObjectId(id="two@sdk.example")],
                    properties=["ts_score"],
                    properties_with_history=[],
                )
            )
            query = PublicObjectSearchRequest(
                filter_groups=[
                    FilterGroup(
                        filters=[
                            Filter(property_name="domain", operator="IN", values=["sdk.example"])
                        ]
                    )
                ],
                properties=["domain"],
                limit=10,
            )
            found = search.do_search(query)
            company_batch.update(
                BatchInputSimplePublicObjectBatchInput(
                    inputs=[
                        SimplePublicObjectBatchInput(id=cid, properties={"ts_propensity": "high"})
                    ]
                )
            )
            return {"made": made, "got": got, "upserted": upserted, "read": read, "found": found}

        out = await asyncio.to_thread(scenario)
        assert out["got"].properties["email"] == "one@sdk.example"
        assert sorted(r.new for r in out["upserted"].results) == [False, True]
        assert out["read"].results[0].properties["ts_score"] == "hot"
        assert out["found"].total == 1 and out["found"].results[0].id == cid
        assert hs.store.records["companies"][cid].properties["ts_propensity"] == "high"
        assert {r.properties["email"] for r in hs.records("contacts")} == {
            "one@sdk.example",
            "two@sdk.example",
        }


async def test_the_sdk_sees_hubspot_error_bodies(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path) as hs:
        wrong = sdk_client({**hs.credentials(), "access_token": "pat-wrong"}, hs.ca_file, tmp_path)
        client = sdk_client(hs.credentials(), hs.ca_file, tmp_path)
        apis = [wrong.crm.contacts.basic_api, client.crm.contacts.basic_api]
        apis.append(client.crm.contacts.search_api)
        bad_property = SimplePublicObjectInputForCreate(properties={"no_such_property": "x"})
        hs.inject(429, limit_body("DAILY"), path="/crm/v3/objects/contacts/search")

        def attempt(call: Any) -> tuple[int, dict[str, Any]]:
            # Keep only status and body, and no exception/frame cycle: a live
            # ApiException traceback holds urllib3's socket file, so the pooled
            # connection could not really close.
            try:
                call()
            except ApiException as exc:
                return exc.status, json.loads(exc.body)
            raise AssertionError("the SDK call should have failed")

        def scenario() -> list[tuple[int, dict[str, Any]]]:
            try:
                return [
                    attempt(lambda: apis[0].get_page()),
                    attempt(lambda: apis[1].create(bad_property)),
                    attempt(lambda: apis[2].do_search(PublicObjectSearchRequest(limit=1))),
                ]
            finally:
                close_apis(*apis)

        unauthorized, invalid, limited = await asyncio.to_thread(scenario)
        assert unauthorized[0] == 401 and unauthorized[1]["category"] == "INVALID_AUTHENTICATION"
        assert invalid[0] == 400
        assert invalid[1]["category"] == "VALIDATION_ERROR" and "correlationId" in invalid[1]
        assert invalid[1]["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
        assert limited[0] == 429 and limited[1]["policyName"] == "DAILY"
