"""Salesforce error bodies -> error classes and codes; credentials; the usage gauge."""

from __future__ import annotations

import pytest

from service.destinations.salesforce.client import Credentials, UsageGauge
from service.destinations.salesforce.errors import record_error, request_error
from service.errors import (
    AuthFailed,
    CredentialsUnavailable,
    DeliveryError,
    Forbidden,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from service.metrics import Metrics
from service.redact import register_secret


def body(code: str, message: str) -> list[dict[str, object]]:
    return [{"message": message, "errorCode": code, "fields": []}]


CASES = [
    (
        401,
        body("INVALID_SESSION_ID", "Session expired or invalid"),
        AuthFailed,
        "auth_failed",
        False,
    ),
    (
        403,
        body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
        QuotaExhausted,
        "request_limit_exceeded",
        True,
    ),
    (
        403,
        body("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
        RateLimited,
        "request_limit_exceeded",
        True,
    ),
    (403, body("INSUFFICIENT_ACCESS", "no access"), Forbidden, "insufficient_access", False),
    (
        400,
        body("INVALID_FIELD", "No such column 'Nope__c' on sobject of type Lead"),
        PermanentError,
        "invalid_field",
        False,
    ),
    (
        400,
        body("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Score must be hot"),
        PermanentError,
        "field_custom_validation_exception",
        False,
    ),
    (400, body("STRING_TOO_LONG", "too long"), PermanentError, "string_too_long", False),
    (
        404,
        body("ENTITY_IS_DELETED", "entity is deleted"),
        PermanentError,
        "entity_is_deleted",
        False,
    ),
    (
        404,
        body("NOT_FOUND", "The requested resource does not exist"),
        PermanentError,
        "not_found",
        False,
    ),
    (
        400,
        body("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"),
        TransientError,
        "unable_to_lock_row",
        True,
    ),
    (
        500,
        body("UNKNOWN_EXCEPTION", "An unexpected error occurred"),
        TransientError,
        "unknown_exception",
        True,
    ),
    (503, "<html>Service Unavailable</html>", TransientError, "server_error", True),
]


@pytest.mark.parametrize(("status", "payload", "cls", "code", "retryable"), CASES)
def test_request_errors_are_classified(
    status: int, payload: object, cls: type[DeliveryError], code: str, retryable: bool
) -> None:
    error = request_error(status, payload, quota_retry_s=300, limit_retry_s=7)
    assert type(error) is cls
    assert (error.code, error.retryable, error.http_status) == (code, retryable, status)
    if isinstance(payload, list):
        assert (
            str(payload[0]["message"]) in error.message
        )  # Salesforce's own words reach the status


def test_limit_errors_carry_their_wait() -> None:
    quota = request_error(403, CASES[1][1], quota_retry_s=300, limit_retry_s=7)
    limit = request_error(403, CASES[2][1], quota_retry_s=300, limit_retry_s=7)
    assert isinstance(quota, RateLimited) and quota.retry_after == 300
    assert isinstance(limit, RateLimited) and limit.retry_after == 7


def test_record_errors_name_the_object_and_fields() -> None:
    errors = [
        {
            "statusCode": "STRING_TOO_LONG",
            "message": "Score: data value too large",
            "fields": ["TS_Score__c"],
        }
    ]
    error = record_error(errors, "Lead")
    assert isinstance(error, PermanentError) and error.code == "string_too_long"
    assert "Lead.TS_Score__c" in error.message and "data value too large" in error.message
    locked = record_error([{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}], "Lead")
    assert locked.retryable and locked.code == "unable_to_lock_row"
    assert record_error([], "Lead").code == "rejected"


def test_remote_text_is_redacted() -> None:
    token = "00D-test-only!" + "AQ4AQFtHv3ThisIsASecretToken"  # shaped unlike a real one
    register_secret(token)
    error = request_error(
        400, body("INVALID_FIELD", f"bad {token}"), quota_retry_s=1, limit_retry_s=1
    )
    assert token not in error.message and "***" in error.message


def test_credentials_must_be_https_with_a_token() -> None:
    creds = Credentials.parse(
        {
            "instance_url": "https://x.my.salesforce.com/",
            "access_token": "t",
            "api_version": "v61.0",
        }
    )
    assert creds.data_url == "https://x.my.salesforce.com/services/data/v61.0"
    assert "access_token" not in repr(creds) and "'t'" not in repr(creds)
    assert (
        Credentials.parse({"instance_url": "https://a.example", "access_token": "t"}).api_version
        == "62.0"
    )
    for bad in (
        {"instance_url": "http://x.example", "access_token": "t"},
        {"instance_url": "https://x.example"},
        {"access_token": "t"},
        {"instance_url": "https://x.example", "access_token": "t", "api_version": "latest"},
    ):
        with pytest.raises(CredentialsUnavailable):
            Credentials.parse(bad)


def test_usage_gauge_shows_the_org_closest_to_its_limit() -> None:
    metrics = Metrics()
    gauge = UsageGauge(metrics)

    def value() -> float | None:
        return metrics.registry.get_sample_value(
            "trailspark_destinations_api_usage_ratio", {"destination": "salesforce"}
        )

    gauge.observe("https://a", "api-usage=25/5000; per-app-api-usage=17/250(appName=x)")
    assert value() == pytest.approx(0.005)
    gauge.observe("https://b", "api-usage=4000/5000")
    gauge.observe("https://a", "api-usage=30/5000")
    assert value() == pytest.approx(0.8)
    gauge.observe("https://b", None)  # no header: nothing changes
    assert value() == pytest.approx(0.8)
