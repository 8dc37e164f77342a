"""Tenant isolation of credentials (issue 13, contract §4): a config can only name its
own org's file, a file that names its org is used for no other, and nothing outside
SECRETS_DIR is ever read. Unit checks, then a hypothesis property over random orgs
whose ids share prefixes and contain '-'."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from devkit.factories import make_config
from service.config.store import ConfigStore
from service.credentials import CredentialsFile, expected_ref, ref_problem, reveal
from service.errors import CredentialsUnavailable
from service.metrics import Metrics
from service.models import DestinationConfig
from service.secrets import SecretStore

DESTINATIONS = ("salesforce", "hubspot", "airtable")
TOKEN_KEY = {"salesforce": "access_token", "hubspot": "access_token", "airtable": "api_key"}


def config_with_ref(org: str, ref: str, destination: str = "salesforce") -> DestinationConfig:
    config = make_config(destination, org)
    config["integration"] = {**config["integration"], "credentials_ref": ref}
    return DestinationConfig.model_validate(config)


def write(directory: Path, ref: str, data: dict[str, Any]) -> Path:
    path = directory / f"{ref}.json"
    path.write_bytes(orjson.dumps(data))
    return path


def refused(metrics: Metrics, reason: str) -> float:
    name = "trailspark_destinations_credentials_unavailable_total"
    return metrics.registry.get_sample_value(name, {"reason": reason}) or 0.0


@pytest.mark.parametrize(
    ("org", "ref", "ok"),
    [
        ("acme", "acme-salesforce", True),
        ("acme-eu", "acme-eu-salesforce", True),
        ("acme", "acme-eu-salesforce", False),  # the prefix hole of the old rule
        ("acme", "acme-salesforce-eu", False),  # a free suffix would be ambiguous
        ("acme", "acme-hubspot", False),  # another destination's file
        ("acme", "../acme-salesforce", False),
        ("acme", "/etc/acme-salesforce", False),
        ("acme", "acme-salesforce/../x", False),
        ("acme", "acme-salesforce\x00", False),
        ("a.b", "a.b-salesforce", False),  # '.' never reaches a file name
    ],
)
def test_a_ref_names_exactly_one_org_and_destination(org: str, ref: str, ok: bool) -> None:
    assert (ref_problem(ref, org, "salesforce") is None) is ok


def test_the_old_prefix_attack_is_rejected_and_counted() -> None:
    metrics = Metrics()
    store = ConfigStore(metrics)
    hostile = make_config("salesforce", "acme")
    hostile["integration"]["credentials_ref"] = "acme-eu-salesforce"
    store.apply_record(b"acme:salesforce", orjson.dumps(hostile))
    assert store.get("acme", "salesforce") is None
    name = "trailspark_destinations_configs_rejected_total"
    assert metrics.registry.get_sample_value(name, {"reason": "invalid_credentials_ref"}) == 1


def test_credentials_hold_secrets_as_secretstr(tmp_path: Path) -> None:
    token = "00DTOKEN-held-as-secretstr-0001"
    write(tmp_path, "acme-salesforce", {"access_token": token, "instance_url": "https://x"})
    creds = SecretStore(tmp_path).load(config_with_ref("acme", "acme-salesforce"))
    assert isinstance(creds["access_token"], SecretStr)
    assert reveal(creds["access_token"]) == token
    assert creds["instance_url"] == "https://x"
    assert token not in repr(creds) and token not in str(creds)


def test_a_file_naming_another_org_is_never_used_for_it(tmp_path: Path) -> None:
    metrics = Metrics()
    store = SecretStore(tmp_path, metrics)
    write(tmp_path, "acme-salesforce", {"org_id": "acme-eu", "access_token": "t" * 20})
    with pytest.raises(CredentialsUnavailable) as caught:
        store.load(config_with_ref("acme", "acme-salesforce"))
    assert caught.value.code == "credentials_unavailable" and "t" * 20 not in str(caught.value)
    assert refused(metrics, "other_org") == 1
    write(tmp_path, "acme-eu-salesforce", {"org_id": "acme-eu", "access_token": "u" * 20})
    own = store.load(config_with_ref("acme-eu", "acme-eu-salesforce"))
    assert reveal(own["access_token"]) == "u" * 20


def test_a_ref_that_slipped_past_validation_is_refused_at_read_time(tmp_path: Path) -> None:
    metrics = Metrics()
    write(tmp_path, "acme-eu-salesforce", {"access_token": "v" * 20})
    hostile = DestinationConfig.model_validate(
        {**make_config("salesforce", "acme"), "integration": {
            "id": "i", "status": "connected", "credentials_ref": "acme-eu-salesforce"}}
    )  # fmt: skip
    with pytest.raises(CredentialsUnavailable):
        SecretStore(tmp_path, metrics).load(hostile)
    assert refused(metrics, "invalid_ref") == 1


def test_a_symlink_leaving_secrets_dir_is_refused(tmp_path: Path) -> None:
    metrics = Metrics()
    secrets, outside = tmp_path / "secrets", tmp_path / "outside"
    secrets.mkdir()
    outside.mkdir()
    target = write(outside, "stolen", {"access_token": "w" * 20})
    (secrets / "acme-salesforce.json").symlink_to(target)
    with pytest.raises(CredentialsUnavailable, match="leaves SECRETS_DIR"):
        SecretStore(secrets, metrics).load(config_with_ref("acme", "acme-salesforce"))
    assert refused(metrics, "outside_secrets_dir") == 1


def test_a_kubernetes_secret_volume_of_symlinks_inside_the_dir_works(tmp_path: Path) -> None:
    # A Secret volume: ref.json -> ..data/ref.json, ..data -> ..2026_12_02/
    real = tmp_path / "..2026_12_02"
    real.mkdir()
    write(real, "acme-hubspot", {"access_token": "x" * 20, "base_url": "https://h"})
    (tmp_path / "..data").symlink_to(real.name)
    (tmp_path / "acme-hubspot.json").symlink_to("..data/acme-hubspot.json")
    creds = SecretStore(tmp_path).load(config_with_ref("acme", "acme-hubspot", "hubspot"))
    assert reveal(creds["access_token"]) == "x" * 20


def test_a_missing_or_broken_file_is_unavailable_and_counted(tmp_path: Path) -> None:
    metrics = Metrics()
    store = SecretStore(tmp_path, metrics)
    with pytest.raises(CredentialsUnavailable, match="not mounted"):
        store.load(config_with_ref("acme", "acme-salesforce"))
    (tmp_path / "acme-salesforce.json").write_text("[1, 2]")
    with pytest.raises(CredentialsUnavailable, match="not a JSON object"):
        store.load(config_with_ref("acme", "acme-salesforce"))
    write(tmp_path, "acme-salesforce", {"access_token": ["not", "text"]})
    with pytest.raises(CredentialsUnavailable, match="bad field") as caught:
        store.load(config_with_ref("acme", "acme-salesforce"))
    assert "not" not in caught.value.message.replace("not a", "")  # no value echoed
    assert (refused(metrics, "not_mounted"), refused(metrics, "invalid_file")) == (1, 2)


def test_the_credentials_model_takes_the_oauth_fields_as_secrets() -> None:
    creds = CredentialsFile.model_validate(
        {"refresh_token": "r" * 20, "client_id": "cid", "client_secret": "s" * 20, "x": 1}
    )
    mapping = creds.as_mapping()
    assert isinstance(mapping["refresh_token"], SecretStr)
    assert isinstance(mapping["client_secret"], SecretStr)
    assert mapping["client_id"] == "cid" and mapping["x"] == 1
    assert "r" * 20 not in repr(creds) and "s" * 20 not in repr(creds)


# --- property: random orgs, hostile configs, mislabelled files ----------------------------

_LABEL = st.from_regex(r"[a-z][a-z0-9]{0,2}", fullmatch=True)
_SUFFIX = st.sampled_from(["eu", "us", "salesforce", "hubspot", "airtable", "x-1"])


@st.composite
def orgs(draw: st.DrawFn) -> list[str]:
    """Org ids, many of them another org's id plus '-' and more (the dangerous case)."""
    ids = draw(st.lists(_LABEL, min_size=1, max_size=3, unique=True))
    for _ in range(draw(st.integers(1, 5))):
        ids.append(f"{draw(st.sampled_from(ids))}-{draw(_SUFFIX)}")
    return sorted(set(ids))


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    ids = draw(orgs())
    refs_of_anyone = [expected_ref(o, d) for o in ids for d in DESTINATIONS]
    configs, files = [], {}
    for org in ids:
        for dest in draw(st.lists(st.sampled_from(DESTINATIONS), unique=True, max_size=3)):
            ref = draw(
                st.one_of(
                    st.just(expected_ref(org, dest)),
                    st.sampled_from(refs_of_anyone),  # often another org's
                    st.sampled_from([f"../{org}-{dest}", f"/tmp/{org}-{dest}", f"{org}-{dest}.."]),
                )
            )
            configs.append((org, dest, ref))
    for org in ids:
        for dest in DESTINATIONS:
            # The operator's file; sometimes labelled with its org, sometimes mislabelled.
            label = draw(st.one_of(st.none(), st.just(org), st.sampled_from(ids)))
            files[expected_ref(org, dest)] = (org, label)
    events = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=8))
    return {"ids": ids, "configs": configs, "files": files, "events": events}


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(scenarios())
def test_no_delivery_ever_gets_another_orgs_token(scenario: dict[str, Any]) -> None:
    metrics = Metrics()
    store = ConfigStore(metrics)
    hostile = 0
    for org, dest, ref in scenario["configs"]:
        config = make_config(dest, org)
        config["integration"]["credentials_ref"] = ref
        store.apply_record(f"{org}:{dest}".encode(), orjson.dumps(config))
        hostile += ref != expected_ref(org, dest)
    rejected = metrics.registry.get_sample_value(
        "trailspark_destinations_configs_rejected_total", {"reason": "invalid_credentials_ref"}
    )
    assert (rejected or 0) == hostile  # every hostile config is rejected and counted
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        token_owner: dict[str, str] = {}
        for ref, (owner, label) in scenario["files"].items():
            token = f"tok-{os.urandom(8).hex()}"
            token_owner[token] = owner
            dest = ref.rsplit("-", 1)[1]
            data = {TOKEN_KEY[dest]: token} | ({"org_id": label} if label else {})
            write(directory, ref, data)
        secrets = SecretStore(directory, metrics)
        for event_org in scenario["events"]:
            for config in store.active(event_org):  # what the router delivers the event with
                assert config.org_id == event_org
                try:
                    creds = secrets.load(config)
                except CredentialsUnavailable:
                    _, label = scenario["files"][config.integration.credentials_ref]
                    assert label not in (None, event_org)  # only a mislabelled file fails
                    continue
                token = reveal(creds[TOKEN_KEY[config.destination]])
                assert token is not None and token_owner[token] == event_org


# --- end to end: orgs with prefix-sharing ids, one Salesforce per org, real requests ----


@pytest.mark.slow
async def test_each_org_is_written_only_with_its_own_token(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from devkit.factories import make_event
    from devkit.harness import ServiceHarness
    from devkit.sandboxes.salesforce import SalesforceSandbox

    tls = tmp_path / "tls"
    tls.mkdir()
    orgs = ["acme", "acme-eu", "acme-eu-salesforce", "acme-x"]
    score = {"acme": "hot", "acme-eu": "warm", "acme-eu-salesforce": "cold", "acme-x": "hot"}
    async with (
        SalesforceSandbox(tls, token="tok-acme-0000000001") as a,
        SalesforceSandbox(tls, token="tok-acme-eu-00000002") as b,
        SalesforceSandbox(tls, token="tok-acme-eu-sf-00003") as c,
    ):
        sandbox = {"acme": a, "acme-eu": b, "acme-eu-salesforce": c}
        for box in sandbox.values():
            box.seed("Lead", {"Email": "lead@example.com", "LastName": "L", "Company": "C"})
        h = ServiceHarness(kafka_bootstrap, tmp_path, env={"DESTINATION_CA_FILE": str(a.ca_file)})
        async with h:
            h.write_secret("acme-salesforce", {**a.credentials(), "org_id": "acme"})
            h.write_secret("acme-eu-salesforce", b.credentials())
            h.write_secret("acme-eu-salesforce-salesforce", c.credentials())
            # acme-x's file is acme-eu's secret, labelled as such (a wrong mount).
            h.write_secret("acme-x-salesforce", {**b.credentials(), "org_id": "acme-eu"})
            for org in orgs:
                await h.put_config(make_config("salesforce", org))
            hostile = make_config("salesforce", "acme", version=2)
            hostile["integration"]["credentials_ref"] = "acme-eu-salesforce"
            await h.put_config(hostile, wait=False)
            await h.wait_until(
                lambda: h.metric("configs_rejected_total", reason="invalid_credentials_ref") == 1
            )
            for org in orgs:
                await h.send_event(make_event(org, email="lead@example.com", score=score[org]))
            statuses = {s["org_id"]: s for s in await h.wait_statuses(len(orgs))}
            other_org = h.metric("credentials_unavailable_total", reason="other_org")
    assert {o: s["status"] for o, s in statuses.items()} == {
        "acme": "delivered",
        "acme-eu": "delivered",
        "acme-eu-salesforce": "delivered",
        "acme-x": "failed",
    }
    assert statuses["acme-x"]["error"]["code"] == "credentials_unavailable" and other_org >= 1
    for org, box in sandbox.items():
        (lead,) = box.records("Lead").values()
        assert lead["TS_Score__c"] == score[org]  # written by its own org only
    # Each sandbox answers 401 to any other token, and each delivery is delivered, so
    # every request carried its own org's token; acme-x's event reached no sandbox.
    assert len(a.calls) == len(b.calls) == len(c.calls) > 0
