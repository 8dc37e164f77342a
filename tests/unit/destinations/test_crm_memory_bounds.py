"""Per-account state that only grew (issue 19, findings 12 and 13): the redaction set,
held tokens, HubSpot rate windows and budgets, cached secret files, and the
Salesforce daily budget shared by every org on one instance URL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import count
from pathlib import Path
from typing import Any

import orjson
import pytest

from devkit.factories import make_batch, make_config, make_event
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import hubspot_config
from devkit.sandboxes.salesforce import SalesforceSandbox
from service import redact
from service import secrets as secrets_module
from service.destinations.base import DestinationContext, account_of
from service.destinations.hubspot import HubSpotDestination
from service.destinations.idle import IdleMap
from service.destinations.oauth import RefreshSpec, TokenSource
from service.destinations.salesforce import SalesforceDestination
from service.errors import QuotaExhausted
from service.metrics import Metrics
from service.models import DeliveryState, DestinationConfig
from service.secrets import SecretStore
from service.settings import Settings


def test_idle_map_drops_idle_entries_and_the_least_recently_used() -> None:
    now = [0.0]
    evicted: list[str] = []
    entries: IdleMap[str, int] = IdleMap(
        idle_s=10, max_entries=3, on_evict=lambda k, _: evicted.append(k), clock=lambda: now[0]
    )
    for n, key in enumerate("abc"):
        entries.put(key, n)
    assert entries.get("a") == 0  # used: now the most recent
    entries.put("d", 3)
    assert evicted == ["b"] and len(entries) == 3
    now[0] = 11.0
    entries.put("e", 4)  # every entry but this one idled out
    assert evicted == ["b", "c", "a", "d"] and list(entries.values()) == [4]


class _Answer:
    def __init__(self, body: dict[str, Any]) -> None:
        self.status, self._raw = 200, orjson.dumps(body)

    async def read(self) -> bytes:
        return self._raw


class TokenEndpoint:
    """A token endpoint that hands out a new access and refresh token on every grant."""

    def __init__(self) -> None:
        self.numbers = count()
        self.refresh_tokens_sent: list[str] = []

    @asynccontextmanager
    async def post(self, url: str, *, data: dict[str, str], **_: Any) -> AsyncIterator[_Answer]:
        self.refresh_tokens_sent.append(data["refresh_token"])
        n = next(self.numbers)
        yield _Answer({"access_token": f"access-{n:08d}", "refresh_token": f"refresh-{n:08d}"})


def spec(refresh: str, owner: str = "org_1/org_1-hubspot") -> RefreshSpec:
    data = {"refresh_token": refresh, "client_id": "client-0001", "client_secret": "secret-0001"}
    parsed = RefreshSpec.parse(data, "https://crm.example/oauth/v1/token", "hubspot", owner)
    assert parsed is not None
    return parsed


async def test_refreshed_tokens_replace_each_other_in_the_redaction_set() -> None:
    endpoint, tokens = TokenEndpoint(), TokenSource("hubspot", Metrics(), default_lifetime_s=60)
    grant = spec("refresh-initial")
    before = redact.registered()
    used = ["refused-initial"]
    for _ in range(300):  # every token is refused once: a grant each time
        used.append(await tokens.after_401(endpoint, grant, used[-1]))  # type: ignore[arg-type]
    used = used[1:]
    assert len(set(used)) == 300 and len(tokens._tokens) == 1
    assert redact.registered() - before <= 2 * redact.KEEP_PER_OWNER
    assert redact.redact(f"Bearer-less echo {used[-1]}") == "Bearer-less echo ***"  # live: hidden
    assert used[0] in redact.redact(used[0])  # long replaced: no longer held
    assert endpoint.refresh_tokens_sent[1:4] == ["refresh-00000000", "refresh-00000001",
                                                 "refresh-00000002"]  # fmt: skip


async def test_a_new_refresh_token_in_the_file_replaces_the_held_token() -> None:
    endpoint, tokens = TokenEndpoint(), TokenSource("hubspot", Metrics(), default_lifetime_s=60)
    first = await tokens.token(endpoint, spec("refresh-from-file-a"))  # type: ignore[arg-type]
    again = await tokens.token(endpoint, spec("refresh-from-file-a"))  # type: ignore[arg-type]
    rotated = await tokens.token(endpoint, spec("refresh-from-file-b"))  # type: ignore[arg-type]
    assert first == again != rotated and len(tokens._tokens) == 1
    assert endpoint.refresh_tokens_sent == ["refresh-from-file-a", "refresh-from-file-b"]


def test_unowned_secrets_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "MAX_OWNERS", 50)
    values = [f"unowned-secret-{n:06d}" for n in range(500)]
    for value in values:
        redact.register_secret(value)
    assert redact.registered() <= 50 * redact.KEEP_PER_OWNER
    assert redact.redact(values[-1]) == "***"


def test_secret_files_are_cached_within_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(secrets_module, "CACHE_MAX_ENTRIES", 5)
    store = SecretStore(tmp_path)
    configs = []
    for n in range(20):
        org = f"org{n}"
        token = f"token-of-{org}-{n:04d}"
        (tmp_path / f"{org}-salesforce.json").write_bytes(
            orjson.dumps({"access_token": token, "instance_url": "https://x.example"})
        )
        configs.append(DestinationConfig.model_validate(make_config("salesforce", org)))
        store.load(configs[-1])
    assert len(store._cache) == 5
    assert store.load(configs[0])["instance_url"] == "https://x.example"  # read again


def test_a_rotated_secret_file_replaces_its_values_in_the_redaction_set(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    config = DestinationConfig.model_validate(make_config("salesforce", "rot"))
    path, before = tmp_path / "rot-salesforce.json", redact.registered()
    tokens = [f"rotated-file-token-{n:05d}" for n in range(100)]
    for n, token in enumerate(tokens):
        path.write_bytes(orjson.dumps({"access_token": token, "instance_url": "https://x"}))
        os.utime(path, ns=(n * 10**9, n * 10**9))  # a new mtime: read again
        store.load(config)
    assert redact.registered() - before <= redact.KEEP_PER_OWNER
    assert redact.redact(tokens[-1]) == "***" and redact.redact(tokens[0]) == tokens[0]


def settings(ca: Path) -> Settings:
    return Settings(bootstrap_servers="unused:9092", destination_ca_file=ca)


async def test_hubspot_keeps_one_limit_and_budget_per_credentials_file(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path) as hs:
        dest = HubSpotDestination(DestinationContext(settings(hs.ca_file), Metrics(), {}))
        config = hubspot_config(propensity=False, max_daily_api_share=0.5)
        try:
            for creds in (hs.credentials(), hs.refresh_credentials(), hs.credentials()):
                [out] = await dest.write(make_batch(config, [make_event()], creds))
                assert out.state is DeliveryState.DELIVERED
        finally:
            await dest.close()
        account = account_of(DestinationConfig.model_validate(config))
        assert len(dest._limits) == 1 and account in dest._limits
        assert len(dest.budget._accounts) == 1 and account in dest.budget._accounts


async def test_orgs_on_one_salesforce_instance_keep_their_own_daily_share(
    tmp_path: Path,
) -> None:
    """org_a may spend 25 % of its allocation of 20 requests; org_b, on the same
    instance URL, sets no share. org_b's config no longer lifts org_a's share."""
    async with SalesforceSandbox(tmp_path, api_limit=20) as sf:
        emails = [f"p{i}@x.example" for i in range(6)]
        sf.seed("Lead", *[{"LastName": "L", "Company": "C", "Email": e} for e in emails])
        dest = SalesforceDestination(DestinationContext(settings(sf.ca_file), Metrics()))
        capped = make_config("salesforce", "org_a", max_daily_api_share=0.25)
        free = make_config("salesforce", "org_b")
        delivered = {"org_a": 0, "org_b": 0}
        try:
            with pytest.raises(QuotaExhausted) as caught:
                for email in emails:
                    for config in (free, capped):
                        event = make_event(config["org_id"], email=email)
                        batch = make_batch(config, [event], sf.credentials())
                        [out] = await dest.write(batch)
                        assert out.state is DeliveryState.DELIVERED
                        delivered[config["org_id"]] += 1
        finally:
            await dest.close()
    assert caught.value.code == "quota_budget_exhausted"
    assert delivered == {"org_a": 2, "org_b": 3}  # org_b's requests are not org_a's
