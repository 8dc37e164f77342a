"""Numbers read from CRM headers are bounded (issue 19, finding 1): a Retry-After of
`1e12`, `inf`, `nan`, `-5` or a date in year 9999, absurd X-HubSpot-RateLimit-* and
Sforce-Limit-Info values never overflow a sleep or a datetime, nor stall a token."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from multidict import CIMultiDict

from service.destinations.airtable.errors import classify
from service.destinations.http import (
    MAX_WAIT_S,
    bounded_seconds,
    header_number,
    retry_after_seconds,
)
from service.destinations.hubspot.limits import TokenLimits
from service.destinations.hubspot.options import HubSpotOptions
from service.destinations.salesforce.client import UsageGauge
from service.errors import RateLimited
from service.metrics import Metrics

RETRY_AFTER = [
    ("7", 7.0),
    (" 2.5 ", 2.5),
    ("0", 0.0),
    ("-5", 9.0),  # not delay-seconds (RFC 9110): the default
    ("1e12", 9.0),
    ("99999999999999999999999", MAX_WAIT_S),
    ("1e400", 9.0),  # inf once parsed
    ("inf", 9.0),
    ("-inf", 9.0),
    ("nan", 9.0),
    ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_WAIT_S),
    ("Fri, 31 Dec 1999 23:59:59 GMT", 0.0),
    ("Mon, 99 Foo 99999 99:99:99 GMT", 9.0),
    ("soon", 9.0),
    ("", 9.0),
    ("9" * 500, 9.0),
]


@pytest.mark.parametrize(("raw", "seconds"), RETRY_AFTER)
def test_retry_after_is_finite_and_within_an_hour(raw: str, seconds: float) -> None:
    assert retry_after_seconds(CIMultiDict({"Retry-After": raw}), 9.0) == seconds


def test_an_http_date_retry_after_counts_from_now() -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=120)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    waited = retry_after_seconds({"Retry-After": soon}, 9.0)
    assert 110 < waited <= 120


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (-1, 0.0), (math.inf, 1.0), (math.nan, 1.0), (10**400, MAX_WAIT_S), (True, 1.0),
     ("5", 1.0), (None, 1.0)],
)  # fmt: skip
def test_bounded_seconds(value: object, expected: float) -> None:
    assert bounded_seconds(value, 1.0) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "number"),
    [("190", 190), ("0", 0), ("-1", None), ("1e12", None), ("²", None), ("٣", None),
     ("9" * 16, None), ("", None), ("12 ", 12)],
)  # fmt: skip
def test_header_numbers_are_plain_ascii_digits(raw: str, number: int | None) -> None:
    assert header_number({"X": raw}, "X") == number


ABSURD_LIMITS = [
    {"X-HubSpot-RateLimit-Max": "1", "X-HubSpot-RateLimit-Interval-Milliseconds": "1000000000000"},
    {"X-HubSpot-RateLimit-Max": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
    {"X-HubSpot-RateLimit-Max": "1", "X-HubSpot-RateLimit-Interval-Milliseconds": "0"},
    {"X-HubSpot-RateLimit-Max": "-3", "X-HubSpot-RateLimit-Interval-Milliseconds": "-10000"},
    {"X-HubSpot-RateLimit-Max": "nan", "X-HubSpot-RateLimit-Interval-Milliseconds": "inf"},
]


@pytest.mark.parametrize("headers", ABSURD_LIMITS)
def test_absurd_hubspot_windows_are_not_adopted(headers: dict[str, str]) -> None:
    limits = TokenLimits(HubSpotOptions())
    assert limits.observe(CIMultiDict(headers)) is None
    assert (limits.general.max_requests, limits.general.window_s) == (190, 10.0)
    error = limits.rate_limited(CIMultiDict(headers), {"policyName": "TEN_SECONDLY_ROLLING"}, False)
    assert error.retry_after == 10.0  # our own window, not the announced one


@pytest.mark.parametrize(
    ("daily", "left", "ratio"),
    [("1", "99999999999999", None), ("500000", "-1", None), ("500000", "0", 1.0),
     ("500000", "600000", 0.0), ("0", "0", None), ("abc", "1", None), ("10", "5", 0.5)],
)  # fmt: skip
def test_daily_usage_ratio_is_within_0_and_1(daily: str, left: str, ratio: float | None) -> None:
    limits = TokenLimits(HubSpotOptions(daily_retry_s=60.0))
    headers = {"X-HubSpot-RateLimit-Daily": daily, "X-HubSpot-RateLimit-Daily-Remaining": left}
    assert limits.observe(headers) == ratio


@pytest.mark.parametrize("raw", ["1e12", "inf", "nan", "-5", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_hubspot_and_airtable_429s_carry_a_bounded_wait(raw: str) -> None:
    headers = CIMultiDict({"Retry-After": raw})
    hubspot = TokenLimits(HubSpotOptions()).rate_limited(headers, {"policyName": "SECONDLY"}, False)
    airtable = classify(429, {"error": {"type": "TOO_MANY_REQUESTS"}}, headers)
    for error in (hubspot, airtable):
        assert isinstance(error, RateLimited)
        assert 0.0 <= error.retry_after <= MAX_WAIT_S and math.isfinite(error.retry_after)
    if raw in ("inf", "nan"):  # unreadable: each CRM's own default
        assert (hubspot.retry_after, airtable.retry_after) == (1.0, 30.0)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "header",
    ["api-usage=5/0", "api-usage=99999999999999999999999/1", "api-usage=1/" + "9" * 400,
     "api-usage=-1/5", "api-usage=x/y", ""],
)  # fmt: skip
def test_sforce_limit_info_out_of_range_is_ignored(header: str) -> None:
    metrics = Metrics()
    gauge = UsageGauge(metrics)
    assert gauge.observe("org_1/org_1-salesforce", header) is None
    sample = metrics.registry.get_sample_value(
        "trailspark_destinations_api_usage_ratio", {"destination": "salesforce"}
    )
    assert not sample


def test_an_overdrawn_org_shows_above_1_but_bounded() -> None:
    metrics = Metrics()
    assert UsageGauge(metrics).observe("a", "api-usage=999999999999/1") == 1
    sample = metrics.registry.get_sample_value(
        "trailspark_destinations_api_usage_ratio", {"destination": "salesforce"}
    )
    assert sample == 10.0
