"""Expiring tokens (contract §4, issue 14): credentials files with a refresh token,
against the sandboxes' token endpoints and their expiring access tokens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devkit.factories import make_batch, make_config, make_event
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.base import DestinationContext
from service.destinations.hubspot import HubSpotDestination
from service.destinations.salesforce import SalesforceDestination, SalesforceOptions
from service.errors import AuthFailed
from service.metrics import Metrics
from service.models import DeliveryState
from service.settings import Settings


def settings(ca: Path) -> Settings:
    return Settings(bootstrap_servers="unused:9092", destination_ca_file=ca)


@pytest.fixture
async def sf(tmp_path: Path) -> AsyncIterator[SalesforceSandbox]:
    async with SalesforceSandbox(tmp_path) as sb:
        sb.seed("Lead", {"LastName": "L", "Company": "C", "Email": "ada@example.com"})
        yield sb


def sf_batch(sb: SalesforceSandbox, creds: dict[str, str] | None = None) -> object:
    return make_batch(
        make_config("salesforce"),
        [make_event(email="ada@example.com")],
        creds or sb.refresh_credentials(),
    )


async def test_salesforce_gets_a_token_and_refreshes_once_after_it_expires(
    sf: SalesforceSandbox,
) -> None:
    sf.oauth.lifetime_s = 0.5  # the org's session timeout; the answer does not say it
    dest = SalesforceDestination(DestinationContext(settings(sf.ca_file), Metrics()))
    try:
        [first] = await dest.write(sf_batch(sf))  # type: ignore[arg-type]
        assert first.state is DeliveryState.DELIVERED and sf.oauth.grants == 1
        await asyncio.sleep(0.6)
        [second] = await dest.write(sf_batch(sf))  # type: ignore[arg-type]
    finally:
        await dest.close()
    assert second.state is DeliveryState.DELIVERED
    assert sf.oauth.grants == 2  # one refresh after the 401, then the request again
    # first write: query + PATCH; second (the id is cached): refused PATCH, its retry
    assert [c.method for c in sf.calls] == ["GET", "PATCH", "PATCH", "PATCH"]


async def test_salesforce_refreshes_before_a_known_lifetime_ends(sf: SalesforceSandbox) -> None:
    sf.oauth.lifetime_s = 1.0
    dest = SalesforceDestination(
        DestinationContext(settings(sf.ca_file), Metrics()), SalesforceOptions(token_lifetime_s=1.0)
    )
    try:
        await dest.write(sf_batch(sf))  # type: ignore[arg-type]
        await asyncio.sleep(0.95)  # inside the last tenth of the lifetime: refresh first
        [out] = await dest.write(sf_batch(sf))  # type: ignore[arg-type]
    finally:
        await dest.close()
    assert out.state is DeliveryState.DELIVERED and sf.oauth.grants == 2
    assert [c.method for c in sf.calls] == ["GET", "PATCH", "PATCH"]  # no 401 on the way


async def test_one_refresh_in_flight_per_credentials_file(sf: SalesforceSandbox) -> None:
    sf.oauth.delay_s = 0.2
    dest = SalesforceDestination(DestinationContext(settings(sf.ca_file), Metrics()))
    try:
        outs = await asyncio.gather(*(dest.write(sf_batch(sf)) for _ in range(8)))  # type: ignore[arg-type]
    finally:
        await dest.close()
    assert all(o.state is DeliveryState.DELIVERED for [o] in outs)
    assert sf.oauth.grants == 1


async def test_a_refused_grant_is_auth_failed_and_never_shows_a_secret(
    sf: SalesforceSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    creds = {**sf.refresh_credentials(), "client_secret": "wrong-secret-123456"}
    dest = SalesforceDestination(DestinationContext(settings(sf.ca_file), Metrics()))
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(AuthFailed) as caught:
            await dest.write(sf_batch(sf, creds))  # type: ignore[arg-type]
    finally:
        await dest.close()
    assert caught.value.code == "token_refresh_failed" and sf.oauth.refused == 1
    shown = caught.value.message + caplog.text
    for secret in (creds["client_secret"], creds["refresh_token"]):
        assert secret not in shown


def hs_destination(hs: HubSpotSandbox, metrics: Metrics) -> HubSpotDestination:
    return HubSpotDestination(DestinationContext(settings(hs.ca_file), metrics, {}))


async def test_hubspot_refreshes_before_expiry_and_keeps_a_rotated_refresh_token(
    hs: HubSpotSandbox,
) -> None:
    hs.oauth.lifetime_s, hs.oauth.rotate = 1.0, True
    metrics = Metrics()
    dest = hs_destination(hs, metrics)
    cfg = make_config("hubspot")
    try:
        for _ in range(2):
            [out] = await dest.write(make_batch(cfg, [make_event()], hs.refresh_credentials()))
            assert out.state is DeliveryState.DELIVERED
            await asyncio.sleep(0.95)
    finally:
        await dest.close()
    # The file still holds the first refresh token; the rotated one lived in memory.
    assert hs.oauth.grants == 2 and hs.oauth.refused == 0
    assert hs.count("/batch/upsert", status=401) == 0
    sample = metrics.registry.get_sample_value(
        "trailspark_destinations_token_refreshes_total", {"destination": "hubspot", "outcome": "ok"}
    )
    assert sample == 2


async def test_hubspot_401_gets_one_refresh_and_one_retry(hs: HubSpotSandbox) -> None:
    dest = hs_destination(hs, Metrics())
    cfg = make_config("hubspot")
    try:
        await dest.write(make_batch(cfg, [make_event()], hs.refresh_credentials()))
        hs.oauth.expire_all()  # revoked early: the service learns it from a 401
        [out] = await dest.write(make_batch(cfg, [make_event()], hs.refresh_credentials()))
    finally:
        await dest.close()
    assert out.state is DeliveryState.DELIVERED
    assert hs.oauth.grants == 2 and hs.count("/batch/upsert", status=401) == 1
