"""An answer that cannot be read is never "no record" (contract §6): for each CRM
and each kind of malformed 2xx answer (invalid JSON, a result list one short,
results without ids), the delivery is retried with `bad_response`, never
`record_not_found`, and nothing is created. Against the HTTPS sandboxes."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path

import pytest

from devkit.factories import make_batch, make_config, make_event
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.garble import KINDS
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import destination as hubspot_destination
from devkit.sandboxes.hubspot.testing import hubspot_config
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.base import Outcome
from service.errors import DeliveryError
from service.models import DeliveryState
from tests.unit.destinations.airtable.test_destination import opened, target
from tests.unit.destinations.salesforce.test_destination import FIELDS
from tests.unit.destinations.salesforce.test_destination import (
    destination as salesforce_destination,
)

EMAIL = "ada@example.com"


async def results(write: Awaitable[list[Outcome]]) -> set[tuple[DeliveryState, str | None]]:
    """(state, error code) of every outcome; a whole-batch error counts for all."""
    try:
        outcomes = await write
    except DeliveryError as exc:
        return {(Outcome.from_error(exc).state, exc.code)}
    return {(o.state, o.error.code if o.error else o.reason) for o in outcomes}


UNREADABLE = {(DeliveryState.RETRYING, "bad_response")}


SALESFORCE_CASES = [
    *(("/query", kind, True) for kind in KINDS),  # the lookup, by Email
    ("/composite/sobjects", "invalid_json", True),  # the update
    ("/composite/sobjects", "short", True),
    ("/composite/sobjects", "no_ids", False),  # a create whose result has no id
]


@pytest.mark.parametrize(("path", "kind", "seeded"), SALESFORCE_CASES)
async def test_salesforce(tmp_path: Path, path: str, kind: str, seeded: bool) -> None:
    async with SalesforceSandbox(tmp_path) as sb:
        if seeded:
            sb.seed("Lead", {"LastName": "L", "Company": "C", "Email": EMAIL})
        lead = {"object": "Lead", "match": {"crm_field": "Email", "event_field": "lead.email"}}
        target = {**lead, "fields": FIELDS, "create_if_missing": True}
        cfg = make_config("salesforce", targets=[target])
        sb.garble(kind, path=path)
        d = salesforce_destination(sb)
        await d.setup()
        try:
            batch = make_batch(cfg, [make_event(email=EMAIL)], sb.credentials())
            got = await results(d.write(batch))
        finally:
            await d.close()
        assert got == UNREADABLE
        assert len(sb.records("Lead")) == 1  # the seeded one, or the one created once


@pytest.mark.parametrize("kind", KINDS)
async def test_hubspot(tmp_path: Path, kind: str) -> None:
    async with HubSpotSandbox(tmp_path) as hs:
        hs.seed("contacts", email=EMAIL, firstname="Ada")
        hs.seed("companies", domain="analytical.example", name="AE")
        hs.garble(kind, path="/crm/v3/objects/")
        d = hubspot_destination(hs)
        await d.setup()
        try:
            config = hubspot_config(contacts={"create_if_missing": True})
            got = await results(
                d.write(make_batch(config, [make_event(email=EMAIL)], hs.credentials()))
            )
        finally:
            await d.close()
        assert got == UNREADABLE
        assert len(hs.records("contacts")) == 1 and len(hs.records("companies")) == 1


AIRTABLE_CASES = [
    *((False, "GET", kind) for kind in ("invalid_json", "no_ids")),  # the lookup
    *((False, "PATCH", kind) for kind in KINDS),  # the update
    *((True, "PATCH", kind) for kind in KINDS),  # the upsert
]


@pytest.mark.parametrize(("create", "method", "kind"), AIRTABLE_CASES)
async def test_airtable(tmp_path: Path, create: bool, method: str, kind: str) -> None:
    """A lookup one result short cannot be told from a miss (Airtable's list has
    no total), so `short` is checked on writes, whose count we know."""
    async with AirtableSandbox(tmp_path, rate_limit=1000) as at:
        at.seed("Contacts", [{"Email": EMAIL}])
        at.garble(kind, path="/v0/", method=method)
        async with opened(at) as d:
            cfg = make_config("airtable", targets=[target(create_if_missing=create)])
            batch = make_batch(cfg, [make_event(email=EMAIL)], at.credentials())
            got = await results(d.write(batch))
        assert got == UNREADABLE
        assert len(at.table("Contacts")) == 1


# The shapes of issue 19 (devkit/sandboxes/garble.py MALFORMED): each is bad_response too.
SALESFORCE_SHAPES = [
    *(("/query", kind) for kind in ("null_body", "null_fields", "wrong_types", "foreign_next")),
    *(("/composite/sobjects", kind) for kind in ("null_body", "null_errors", "wrong_types")),
]


@pytest.mark.parametrize(("path", "kind"), SALESFORCE_SHAPES)
async def test_salesforce_shapes(tmp_path: Path, path: str, kind: str) -> None:
    async with SalesforceSandbox(tmp_path) as sb:
        sb.seed("Lead", {"LastName": "L", "Company": "C", "Email": EMAIL})
        lead = {"object": "Lead", "match": {"crm_field": "Email", "event_field": "lead.email"}}
        cfg = make_config("salesforce", targets=[{**lead, "fields": FIELDS,
                                                  "create_if_missing": True}])  # fmt: skip
        sb.garble(kind, path=path)
        d = salesforce_destination(sb)
        await d.setup()
        try:
            got = await results(
                d.write(make_batch(cfg, [make_event(email=EMAIL)], sb.credentials()))
            )
        finally:
            await d.close()
        assert got == UNREADABLE
        assert len(sb.records("Lead")) == 1
        assert sb.count("GET", "/query") == 1  # a foreign nextRecordsUrl is never followed


HUBSPOT_SHAPES = [("null_body", "/crm/v3/objects/"), ("null_errors", "/batch/"),
                  ("wrong_types", "/crm/v3/objects/"), ("null_fields", "/search")]  # fmt: skip


@pytest.mark.parametrize(("kind", "path"), HUBSPOT_SHAPES)
async def test_hubspot_shapes(tmp_path: Path, kind: str, path: str) -> None:
    async with HubSpotSandbox(tmp_path) as hs:
        hs.seed("contacts", email=EMAIL, firstname="Ada")
        hs.seed("companies", domain="analytical.example", name="AE")
        hs.garble(kind, path=path)
        d = hubspot_destination(hs)
        await d.setup()
        try:
            config = hubspot_config(contacts={"create_if_missing": True})
            batch = make_batch(config, [make_event(email=EMAIL)], hs.credentials())
            got = await results(d.write(batch))
        finally:
            await d.close()
        assert got == UNREADABLE
        assert len(hs.records("contacts")) == 1 and len(hs.records("companies")) == 1


AIRTABLE_SHAPES = [
    *((False, "GET", kind) for kind in ("null_body", "null_fields", "wrong_types")),
    *((create, "PATCH", kind) for create in (False, True) for kind in ("null_body", "wrong_types")),
]


@pytest.mark.parametrize(("create", "method", "kind"), AIRTABLE_SHAPES)
async def test_airtable_shapes(tmp_path: Path, create: bool, method: str, kind: str) -> None:
    async with AirtableSandbox(tmp_path, rate_limit=1000) as at:
        at.seed("Contacts", [{"Email": EMAIL}])
        at.garble(kind, path="/v0/", method=method)
        async with opened(at) as d:
            cfg = make_config("airtable", targets=[target(create_if_missing=create)])
            got = await results(
                d.write(make_batch(cfg, [make_event(email=EMAIL)], at.credentials()))
            )
        assert got == UNREADABLE
        assert len(at.table("Contacts")) == 1
