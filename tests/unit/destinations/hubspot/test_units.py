"""Pure pieces of the HubSpot destination: planning, merging, answers, limits."""

from __future__ import annotations

import asyncio
import itertools
from time import monotonic

import pytest

from devkit.factories import make_event
from devkit.sandboxes.hubspot.testing import hubspot_config
from service.destinations.hubspot.errors import error_code, missing_properties, per_input
from service.destinations.hubspot.limits import TokenLimits
from service.destinations.hubspot.options import HubSpotOptions
from service.destinations.hubspot.outcomes import Done, Input, ItemState, Missing, operations
from service.destinations.hubspot.plan import merge, plan_item
from service.errors import PermanentError, QuotaExhausted, RateLimited, TransientError
from service.models import EVENT, DestinationConfig, RecordRef
from service.ratelimit import CompletionWindow


def plan(config: dict, event: dict, item: int = 0, cuts: list[str] | None = None) -> list:
    cfg = DestinationConfig.model_validate(config)
    ev = EVENT.validate_python(event)
    return plan_item(cfg, ev, item, (cuts if cuts is not None else []).append)


def test_mapping_writes_score_reasoning_iso_datetime_and_propensity() -> None:
    event = make_event(evaluated_at="2026-11-22T10:14:59Z", propensity="medium", score="warm")
    contact, company = plan(hubspot_config(), event)
    assert contact.object == "contacts" and contact.lookup.by_email
    assert contact.properties == {
        "ts_score": "warm",
        "ts_reasoning": event["evaluation"]["reasoning"],
        "ts_evaluated_at": "2026-11-22T10:14:59Z",
    }
    assert contact.create == {
        "email": event["lead"]["email"],
        "firstname": "Ada",
        "lastname": "Lovelace",
        "company": "Analytical Engines Ltd",
    }
    assert company.propensity and company.create is None  # never created for propensity
    assert company.properties == {"ts_propensity": "medium"}
    assert (company.lookup.object, company.lookup.prop) == ("companies", "domain")


def test_date_property_takes_midnight_epoch_ms() -> None:
    config = hubspot_config(contacts={"field_types": {"evaluated_at": "date"}})
    (contact, _) = plan(config, make_event(evaluated_at="2026-11-22T23:59:59+02:00"))
    assert contact.properties["ts_evaluated_at"] == 1795305600000  # 2026-11-22T00:00:00Z


def test_reasoning_is_truncated_to_a_hubspot_text_property_and_counted() -> None:
    cuts: list[str] = []
    (contact, _) = plan(hubspot_config(), make_event(reasoning="x" * 70_000), cuts=cuts)
    assert len(contact.properties["ts_reasoning"]) == 65_536
    assert cuts == ["reasoning"]


def test_crm_id_wins_over_matching_and_no_key_means_no_lookup() -> None:
    (by_id, _) = plan(hubspot_config(), make_event(crm_ids={"hubspot": {"contacts": "151"}}))
    assert by_id.record_id == "151" and by_id.lookup is None and by_id.known
    (nokey, _) = plan(hubspot_config(), make_event(email=None))
    assert nokey.record_id is None and nokey.lookup is None and nokey.create is None
    none_propensity = plan(hubspot_config(), make_event(propensity=None))
    assert len(none_propensity) == 1  # nothing to write to the company


def test_merge_newest_evaluation_wins_per_property() -> None:
    config = hubspot_config()
    old = make_event("org_1", "lead_a", email="Same@x.io", score="cold")
    new = make_event("org_1", "lead_b", email="same@x.io", score="hot")
    writes = plan(config, new, 1) + plan(config, old, 0)
    contacts = [r for r in merge(writes) if r.object == "contacts"]
    assert len(contacts) == 1
    rec = contacts[0]
    assert rec.properties["ts_score"] == "hot" and rec.writers == {1} and rec.superseded == {0}
    assert rec.email == "same@x.io" and rec.upsert
    (inp,) = operations([rec])[("contacts", "upsert", "email")]
    assert inp.body["idProperty"] == "email" and inp.body["properties"]["email"] == "same@x.io"


def test_leads_of_one_company_all_write_its_propensity_unless_outvoted() -> None:
    config = hubspot_config()
    same = [make_event(domain="co.example", propensity="high") for _ in range(3)]
    other = make_event(domain="co.example", propensity="low")  # the newest
    writes = [w for n, e in enumerate([*same, other]) for w in plan(config, e, n)]
    for w in writes:
        if w.propensity:
            w.found_id = "77"
    (company,) = [r for r in merge(writes) if r.object == "companies"]
    assert company.properties == {"ts_propensity": "low"}
    assert company.writers == {3} and company.superseded == {0, 1, 2}
    agree = [w for n, e in enumerate(same) for w in plan(config, e, n)]
    for w in agree:
        w.found_id = "77" if w.propensity else None
    (company,) = [r for r in merge(agree) if r.object == "companies"]
    assert company.writers == {0, 1, 2} and not company.superseded


def test_item_outcome_rules() -> None:
    ref = RecordRef(object="contacts", id="1", action="updated")
    boom, later = PermanentError("no", code="x"), TransientError("later")
    assert ItemState(errors=[later, boom]).outcome().error.code == "x"
    assert ItemState(errors=[later], records={("c", "1"): ref}).outcome().state == "retrying"
    assert ItemState(records={("c", "1"): ref}, not_found=True).outcome().state == "delivered"
    assert ItemState(superseded=True).outcome().reason == "stale_evaluation"
    assert ItemState(superseded=True, not_found=True).outcome().reason == "record_not_found"
    assert ItemState().outcome().reason == "record_not_found"


def test_per_input_reads_results_and_207_errors_by_trace() -> None:
    inputs = [Input(str(n), {"id": f"{n}@x.io", "idProperty": "email"}) for n in range(4)]
    body = {
        "results": [
            {"id": "9", "new": True, "objectWriteTraceId": "0", "properties": {}},
            {"id": "8", "properties": {"email": "1@x.io"}},  # no trace: matched by email
        ],
        "errors": [
            {"category": "OBJECT_NOT_FOUND", "context": {"ids": ["2@X.io"]}},
            {
                "category": "VALIDATION_ERROR",
                "message": "bad",
                "context": {"objectWriteTraceId": ["3"]},
                "errors": [{"code": "INVALID_EMAIL", "message": "Email address is invalid"}],
            },
        ],
    }
    out = per_input(body, inputs, created=False)
    assert out["0"] == Done("9", True) and out["1"] == Done("8", False)
    assert isinstance(out["2"], Missing)
    assert isinstance(out["3"], PermanentError) and out["3"].code == "invalid_email"


def test_property_errors_are_found_in_errors_and_in_the_message() -> None:
    embedded = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": 'Property values were not valid: [{"isValid":false,"message":"Property '
        '\\"ts_x\\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"ts_x"}]',
    }
    listed = {"errors": [{"code": "PROPERTY_DOESNT_EXIST", "context": {"propertyName": ["ts_y"]}}]}
    assert missing_properties(embedded) == {"ts_x"} and missing_properties(listed) == {"ts_y"}
    assert error_code(embedded) == "property_doesnt_exist"
    assert error_code({"category": "VALIDATION_ERROR"}) == "validation_error"


def test_429_policies() -> None:
    limits = TokenLimits(HubSpotOptions(daily_retry_s=120))
    headers = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
    rolling = limits.rate_limited(headers, {"policyName": "TEN_SECONDLY_ROLLING"}, search=False)
    assert type(rolling) is RateLimited and rolling.retry_after == 10.0
    told = limits.rate_limited({"Retry-After": "3"}, {"policyName": "SECONDLY"}, search=False)
    assert told.retry_after == 3.0
    assert limits.rate_limited({}, {}, search=True).retry_after == 1.0
    daily = limits.rate_limited({}, {"policyName": "DAILY", "message": "daily"}, search=False)
    assert isinstance(daily, QuotaExhausted) and daily.retry_after == 120
    with pytest.raises(QuotaExhausted):
        limits.check_daily()  # the token is blocked without asking HubSpot again


def test_headers_adapt_the_window_and_report_daily_usage() -> None:
    limits = TokenLimits(HubSpotOptions())
    usage = limits.observe(
        {
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": "1000",
            "X-HubSpot-RateLimit-Daily-Remaining": "250",
        }
    )
    assert (limits.general.max_requests, limits.general.window_s) == (100, 10.0)
    assert usage == 0.75
    limits.observe(
        {"X-HubSpot-RateLimit-Max": "500", "X-HubSpot-RateLimit-Interval-Milliseconds": "1000"}
    )
    assert limits.general.max_requests == 100  # a laxer header never loosens our budget


async def test_completion_window_holds_slots_until_answers_age_out() -> None:
    window = CompletionWindow(3, 0.3)
    starts: list[float] = []

    async def request() -> None:
        async with window.slot():
            starts.append(monotonic())
            await asyncio.sleep(0.05)

    t0 = monotonic()
    await asyncio.gather(*(request() for _ in range(7)))
    rel = sorted(s - t0 for s in starts)
    assert rel[2] < 0.05  # three at once
    assert rel[3] >= 0.35 - 0.01  # the 4th waits for the 1st answer (0.05) + the window (0.3)
    assert rel[6] >= 0.70 - 0.02
    for i in range(3, 7):  # never more than 3 answers-or-requests in any window
        assert rel[i] - rel[i - 3] >= 0.3


async def test_searches_start_evenly_spaced_not_four_back_to_back() -> None:
    limits = TokenLimits(HubSpotOptions(search_window_s=0.4))  # 4 per 0.4 s: one per 0.1 s
    starts: list[float] = []

    async def search() -> None:
        async with limits.slot(search=True):
            starts.append(monotonic())
            await asyncio.sleep(0.01)

    t0 = monotonic()
    await asyncio.gather(*(search() for _ in range(6)))
    rel = sorted(s - t0 for s in starts)
    assert all(b - a >= 0.1 - 0.005 for a, b in itertools.pairwise(rel))
    assert rel[4] - rel[0] >= 0.4  # and still never more than 4 in any window


def test_options_reject_unknown_keys_and_oversized_batches() -> None:
    with pytest.raises(ValueError, match="unknown"):
        HubSpotOptions.from_mapping({"max_reqs": 1})
    with pytest.raises(ValueError, match="between 1 and 100"):
        HubSpotOptions.from_mapping({"inputs_per_request": 101})
    with pytest.raises(ValueError, match="search_spacing_s"):
        HubSpotOptions.from_mapping({"search_spacing_s": -1})
