"""Failures against the HTTPS sandbox: one bad record fails only its event, each
Salesforce error class maps to its status, auth failure then secret rotation,
request limits, 5xx windows, timeouts and bad input that never reaches the API."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.factories import make_batch, make_config, make_event
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.salesforce import SalesforceDestination
from service.errors import (
    AuthFailed,
    CredentialsUnavailable,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from service.models import DeliveryState

FIELDS = {
    "score": "TS_Score__c",
    "reasoning": "TS_Reasoning__c",
    "evaluated_at": "TS_Evaluated_At__c",
}
LEAD = {
    "object": "Lead",
    "match": {"crm_field": "Email", "event_field": "lead.email"},
    "fields": FIELDS,
}


def config(**target: Any) -> dict[str, Any]:
    return make_config("salesforce", targets=[{**LEAD, **target}])


# A short client timeout and short limit waits, through the shared `dest` fixture.
pytestmark = pytest.mark.parametrize(
    "dest", [{"timeout_s": 0.5, "limit_retry_s": 3.0, "quota_retry_s": 120.0}],
    indirect=True, ids=["fast"],
)  # fmt: skip


def leads(sandbox: SalesforceSandbox, n: int) -> list[str]:
    return sandbox.seed(
        "Lead", *[{"LastName": "L", "Company": "C", "Email": f"l{i}@x.example"} for i in range(n)]
    )


def events(n: int) -> list[dict[str, Any]]:
    return [make_event(email=f"l{i}@x.example") for i in range(n)]


async def test_one_bad_record_fails_only_its_own_event(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    ids = leads(sandbox, 3)
    rule = "Leads from l1@ cannot be scored"
    sandbox.store.rules.append(
        lambda obj, rec: rule if rec.get("Email") == "l1@x.example" else None
    )
    outs = await dest.write(make_batch(config(), events(3), sandbox.credentials()))
    assert [o.state for o in outs] == [
        DeliveryState.DELIVERED,
        DeliveryState.FAILED,
        DeliveryState.DELIVERED,
    ]
    error = outs[1].error
    assert error is not None and error.code == "field_custom_validation_exception"
    assert rule in error.message and not error.retryable
    written = sandbox.records("Lead")
    assert [written[i].get("TS_Score__c") for i in ids] == ["hot", None, "hot"]
    assert sandbox.count("PATCH", "/composite/sobjects") == 1  # one call, per-record results


async def test_record_errors_map_to_their_statuses(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    [deleted, locked, ok] = leads(sandbox, 3)
    sandbox.store.records["Lead"].pop(deleted)
    sandbox.store.deleted.add(deleted)
    sandbox.store.locked.add(locked)
    missing = "00Q5g0000009999AAA"
    batch = [
        make_event(crm_ids={"salesforce": {"Lead": deleted}}),
        make_event(crm_ids={"salesforce": {"Lead": locked}}),
        make_event(crm_ids={"salesforce": {"Lead": missing}}),
        make_event(crm_ids={"salesforce": {"Lead": "not-an-id"}}),
        make_event(crm_ids={"salesforce": {"Lead": ok}}),
    ]
    outs = await dest.write(make_batch(config(), batch, sandbox.credentials()))
    summary = [(o.state, o.error.code if o.error else o.reason) for o in outs]
    # A crm id whose record is gone falls back to matching by email (nobody has it here).
    assert summary == [
        (DeliveryState.SKIPPED, "record_not_found"),
        (DeliveryState.RETRYING, "unable_to_lock_row"),
        (DeliveryState.SKIPPED, "record_not_found"),
        (DeliveryState.FAILED, "malformed_id"),
        (DeliveryState.DELIVERED, None),
    ]


async def test_string_too_long_is_permanent_with_salesforce_message(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    leads(sandbox, 1)
    sandbox.store.fields["Lead"]["TS_Score__c"] = 2  # the customer made the field too short
    [out] = await dest.write(make_batch(config(), events(1), sandbox.credentials()))
    assert out.state is DeliveryState.FAILED and out.error is not None
    assert out.error.code == "string_too_long" and "max length=2" in out.error.message


@pytest.mark.parametrize(
    ("target", "column"),
    [
        ({"fields": {**FIELDS, "score": "TS_Nope__c"}}, "TS_Nope__c"),  # unknown written field
        ({"match": {"crm_field": "Emial", "event_field": "lead.email"}}, "Emial"),  # unknown match
    ],
)
async def test_unknown_fields_fail_with_invalid_field(
    sandbox: SalesforceSandbox, dest: SalesforceDestination, target: dict[str, Any], column: str
) -> None:
    leads(sandbox, 2)
    outs = await dest.write(make_batch(config(**target), events(2), sandbox.credentials()))
    for out in outs:
        assert out.state is DeliveryState.FAILED and out.error is not None
        assert (
            out.error.code == "invalid_field" and f"No such column '{column}'" in out.error.message
        )
    assert all("TS_Score__c" not in r for r in sandbox.records("Lead").values())


async def test_auth_failure_then_rotated_secret(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    leads(sandbox, 1)
    old = sandbox.credentials()
    sandbox.token = "00DSANDBOX0000001!rotated.token.value"  # the old token is revoked
    with pytest.raises(AuthFailed) as caught:
        await dest.write(make_batch(config(), events(1), old))
    error = caught.value
    assert (error.code, error.retryable, error.http_status) == ("auth_failed", False, 401)
    assert "INVALID_SESSION_ID" in error.message and old["access_token"] not in error.message
    [out] = await dest.write(make_batch(config(), events(1), sandbox.credentials()))
    assert out.state is DeliveryState.DELIVERED


async def test_daily_limit_parks_the_lane_and_concurrency_limit_waits(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    leads(sandbox, 1)
    sandbox.api_limit = sandbox.api_used  # the org's 24 h allocation is spent
    with pytest.raises(QuotaExhausted) as quota:
        await dest.write(make_batch(config(), events(1), sandbox.credentials()))
    assert (quota.value.code, quota.value.http_status, quota.value.retry_after) == (
        "request_limit_exceeded",
        403,
        120.0,
    )
    sandbox.api_limit = 100_000
    sandbox.fail(403, message="ConcurrentPerOrgLongTxn Limit exceeded.", times=1)
    with pytest.raises(RateLimited) as limit:
        await dest.write(make_batch(config(), events(1), sandbox.credentials()))
    assert not isinstance(limit.value, QuotaExhausted) and limit.value.retry_after == 3.0
    rate_limited = dest.metrics.registry.get_sample_value(
        "trailspark_destinations_destination_rate_limited_total", {"destination": "salesforce"}
    )
    assert rate_limited == 2
    [out] = await dest.write(make_batch(config(), events(1), sandbox.credentials()))
    assert out.state is DeliveryState.DELIVERED


async def test_server_errors_and_timeouts_are_retryable(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    leads(sandbox, 2)
    sandbox.fail(503, seconds=30)
    with pytest.raises(TransientError) as outage:  # lookup phase: nothing written, whole batch
        await dest.write(make_batch(config(), events(2), sandbox.credentials()))
    assert (outage.value.retryable, outage.value.http_status) == (True, 503)
    sandbox.clear_faults()

    sandbox.fail(500, path="/composite/sobjects", times=1)  # the write itself fails once
    outs = await dest.write(make_batch(config(), events(2), sandbox.credentials()))
    assert [(o.state, o.error.code if o.error else None) for o in outs] == [
        (DeliveryState.RETRYING, "unknown_exception")
    ] * 2

    sandbox.latency_s = 1.0  # longer than the 0.5 s client timeout
    with pytest.raises(TransientError) as slow:
        await dest.write(make_batch(config(), events(2), sandbox.credentials()))
    assert slow.value.code == "timeout"
    sandbox.latency_s = 0
    outs = await dest.write(make_batch(config(), events(2), sandbox.credentials()))
    assert all(o.state is DeliveryState.DELIVERED for o in outs)


async def test_bad_input_never_reaches_salesforce(
    sandbox: SalesforceSandbox, dest: SalesforceDestination
) -> None:
    injected = config(match={"crm_field": "Email) OR (Name", "event_field": "lead.email"})
    with pytest.raises(PermanentError) as bad_name:
        await dest.write(make_batch(injected, events(1), sandbox.credentials()))
    assert bad_name.value.code == "invalid_field"
    plain_http = {
        **sandbox.credentials(),
        "instance_url": sandbox.base_url.replace("https", "http"),
    }
    with pytest.raises(CredentialsUnavailable):
        await dest.write(make_batch(config(), events(1), plain_http))
    assert sandbox.calls == []
