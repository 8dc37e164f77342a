"""Values maps and if_empty as pure functions (contract §4a): each CRM's planning writes
the mapped value, and `keep_filled` keeps what a field already holds."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.factories import DEFAULT_TARGETS, make_config, make_event
from service.destinations.airtable.plan import plan_target
from service.destinations.hubspot.plan import plan_item
from service.destinations.mapping import if_empty_fields, is_empty, keep_filled, mapped_values
from service.destinations.salesforce import plan as sf_plan
from service.models import EVENT, DestinationConfig, EvaluationCompleted

PICKLIST = {"hot": "Hot", "warm": "Warm", "cold": "Cold"}
LEVELS = {"high": "Tier 1", "medium": "Tier 2", "low": "Tier 3"}


def event(**extra: Any) -> EvaluationCompleted:
    return EVENT.validate_python(make_event(**extra))


def config(destination: str, propensity: dict[str, Any] | None = None, **options: Any) -> Any:
    target = {**DEFAULT_TARGETS[destination][0], **options}
    raw = make_config(destination, targets=[target], propensity=propensity)
    return DestinationConfig.model_validate(raw)


def never(_: str) -> None:
    raise AssertionError("nothing is truncated here")


@pytest.mark.parametrize(("score", "written"), [("hot", "Hot"), ("warm", "Warm"), ("cold", "Cold")])
def test_the_score_goes_through_its_values_map(score: str, written: str) -> None:
    cfg = config("salesforce", field_options={"score": {"values": PICKLIST}})
    values = mapped_values(cfg.targets[0], event(score=score), default_limit=100)
    assert values["TS_Score__c"] == written
    plain = mapped_values(config("salesforce").targets[0], event(score=score), default_limit=100)
    assert plain["TS_Score__c"] == score


def test_each_crm_plans_the_mapped_values() -> None:
    ev = event(score="warm", propensity="medium", email="ada@example.com")
    sf_prop = {
        "enabled": True,
        "object": "Account",
        "match": {"crm_field": "Website", "event_field": "lead.domain"},
        "field": "TS_Propensity__c",
        "values": LEVELS,
    }
    sf = config("salesforce", sf_prop, field_options={"score": {"values": PICKLIST}})
    lookups = {
        ("Lead", "Email"): {"ada@example.com": ["00Q000000000001AAA"]},
        ("Account", "Website"): {"analytical.example": ["001000000000001AAA"]},
    }
    plan = sf_plan.build(sf, [ev], lookups, default_limit=100, on_truncate=never)
    written = {w.object: w.fields for w in plan.writes}
    assert written["Lead"]["TS_Score__c"] == "Warm"
    assert written["Account"] == {"TS_Propensity__c": "Tier 2"}

    hs_prop = {**sf_prop, "object": "companies", "field": "ts_propensity",
               "match": {"crm_field": "domain", "event_field": "lead.domain"}}  # fmt: skip
    hs = config("hubspot", hs_prop, field_options={"score": {"values": {**PICKLIST, "warm": "B"}}})
    contact, company = plan_item(hs, ev, 0, never)
    assert contact.properties["ts_score"] == "B"
    assert company.properties == {"ts_propensity": "Tier 2"}

    at = config("airtable", field_options={"score": {"values": {**PICKLIST, "warm": "Lukewarm"}}})
    at_plan = plan_target(at.targets[0], [ev], never)
    [upsert] = at_plan.upserts
    assert upsert.record["fields"][at.targets[0].fields["score"]] == "Lukewarm"


def test_if_empty_fields_are_the_crm_names_of_the_guarded_keys() -> None:
    cfg = config(
        "salesforce",
        field_options={"reasoning": {"write": "if_empty"}, "score": {"write": "always"}},
    )
    assert if_empty_fields(cfg.targets[0]) == {"TS_Reasoning__c"}
    assert if_empty_fields(config("salesforce").targets[0]) == frozenset()


def test_keep_filled_keeps_what_a_field_holds() -> None:
    values = {"Score": "Hot", "Reason": "new text", "When": "2026-01-01T00:00:00Z"}
    guarded = frozenset({"Reason", "When"})
    current = {"Reason": "typed by a rep", "When": None}
    assert keep_filled(values, guarded, current) == {
        "Score": "Hot",
        "When": "2026-01-01T00:00:00Z",
    }
    assert keep_filled(values, guarded, {"Reason": ""}) == values  # "" and absent: empty
    assert keep_filled(values, guarded, None) == values  # a new record: all of it
    assert keep_filled(values, frozenset(), {"Reason": "x"}) == values
    assert [is_empty(v) for v in (None, "", [], "x", 0, False)] == [
        True, True, True, False, False, False,
    ]  # fmt: skip
