"""Pure planning: field mapping per object, record creation, matching order,
merging, collection chunks, and the per-item outcome rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devkit.factories import make_config, make_event
from service.destinations.salesforce.lookup import needed
from service.destinations.salesforce.mapping import create_values, target_values
from service.destinations.salesforce.outcomes import fold
from service.destinations.salesforce.plan import Plan, Write, build
from service.destinations.salesforce.writer import requests
from service.errors import PermanentError, TransientError
from service.models import (
    EVENT,
    DeliveryState,
    DestinationConfig,
    EvaluationCompleted,
    RecordRef,
    Target,
)

FIELDS = {
    "score": "TS_Score__c",
    "reasoning": "TS_Reasoning__c",
    "evaluated_at": "TS_Evaluated_At__c",
}
PROPENSITY = {
    "enabled": True,
    "object": "Account",
    "match": {"crm_field": "Website", "event_field": "lead.domain"},
    "field": "TS_Propensity__c",
}


def target(obj: str, **extra: Any) -> dict[str, Any]:
    match = {"Account": {"crm_field": "Website", "event_field": "lead.domain"}}.get(
        obj, {"crm_field": "Email", "event_field": "lead.email"}
    )
    return {"object": obj, "match": match, "fields": FIELDS, **extra}


def config(*targets: dict[str, Any], propensity: dict[str, Any] | None = None) -> DestinationConfig:
    return DestinationConfig.model_validate(
        make_config("salesforce", targets=list(targets), propensity=propensity)
    )


def event(**kw: Any) -> EvaluationCompleted:
    return EVENT.validate_python(make_event(**kw))


def plan_for(cfg: DestinationConfig, events: list[EvaluationCompleted], lookups: Any) -> Plan:
    cuts: list[str] = []
    plan = build(cfg, events, lookups, default_limit=131_072, on_truncate=cuts.append)
    plan.cuts = cuts  # type: ignore[attr-defined]
    return plan


def test_mapped_fields_per_object_and_date_type() -> None:
    ev = event(score="warm", reasoning="why", evaluated_at="2026-11-22T10:14:59Z")
    for obj in ("Lead", "Contact", "Account"):
        values = target_values(
            Target.model_validate(target(obj)), ev, default_limit=100, on_truncate=print
        )
        assert values == {
            "TS_Score__c": "warm",
            "TS_Reasoning__c": "why",
            "TS_Evaluated_At__c": "2026-11-22T10:14:59Z",
        }
    as_date = Target.model_validate(target("Lead", field_types={"evaluated_at": "date"}))
    values = target_values(as_date, ev, default_limit=100, on_truncate=print)
    assert values["TS_Evaluated_At__c"] == "2026-11-22"


def test_a_left_out_mapping_key_is_not_written() -> None:
    only_score = Target.model_validate({**target("Lead"), "fields": {"score": "TS_Score__c"}})
    assert target_values(only_score, event(), default_limit=100, on_truncate=print) == {
        "TS_Score__c": "hot"
    }


def test_create_values_fill_required_fields_with_fallbacks() -> None:
    cuts: list[str] = []
    kw: dict[str, Any] = {"default_limit": 131_072, "on_truncate": cuts.append}
    bare = event(
        email="grace@cobol.example", first_name=None, last_name=None, company=None, domain=None
    )
    lead = create_values(Target.model_validate(target("Lead")), bare, "grace@cobol.example", **kw)
    assert lead["LastName"] == "grace" and lead["Company"] == "Unknown"
    assert lead["Email"] == "grace@cobol.example" and "FirstName" not in lead
    assert lead["TS_Score__c"] == "hot"
    by_domain = event(last_name=None, company=None, domain="cobol.example", email=None)
    lead = create_values(Target.model_validate(target("Lead")), by_domain, None, **kw)
    assert (lead["LastName"], lead["Company"]) == ("Unknown", "cobol.example")
    contact = create_values(Target.model_validate(target("Contact")), event(), "c@x.example", **kw)
    assert set(contact) >= {"FirstName", "LastName", "Email"} and "Company" not in contact
    account = create_values(
        Target.model_validate(target("Account")), event(), "analytical.example", **kw
    )
    assert (
        account["Name"] == "Analytical Engines Ltd" and account["Website"] == "analytical.example"
    )
    long_name = event(last_name="L" * 100)
    assert (
        len(create_values(Target.model_validate(target("Lead")), long_name, None, **kw)["LastName"])
        == 80
    )
    assert cuts == ["LastName"]


def test_crm_ids_win_over_matching_and_skip_the_lookup() -> None:
    cfg = config(target("Lead"))
    known = event(crm_ids={"salesforce": {"Lead": "00Q000000000042AAA"}})
    other = event(email="Other@Example.com")
    assert needed(cfg, [known, other]) == {("Lead", "Email"): ["Other@Example.com"]}
    lookups = {("Lead", "Email"): {"other@example.com": ["00Q000000000007AAA"]}}
    plan = plan_for(cfg, [known, other], lookups)
    assert [(w.record_id, w.fields["TS_Score__c"]) for w in plan.writes] == [
        ("00Q000000000042AAA", "hot"),
        ("00Q000000000007AAA", "hot"),
    ]
    assert plan.uses == [[0], [1]]


def test_no_match_creates_only_when_asked() -> None:
    ev = event(email="new@example.com")
    off = plan_for(config(target("Lead")), [ev], {("Lead", "Email"): {}})
    assert off.writes == [] and off.uses == [[]]
    on = plan_for(config(target("Lead", create_if_missing=True)), [ev], {("Lead", "Email"): {}})
    assert on.writes[0].record_id is None and on.writes[0].fields["Email"] == "new@example.com"


def test_same_record_is_one_write_and_the_newest_evaluation_wins() -> None:
    cfg = config(target("Lead"), propensity=PROPENSITY)
    older = event(email="a@x.example", evaluated_at="2026-11-22T10:00:00Z", propensity="low")
    newer = event(email="b@x.example", evaluated_at="2026-11-22T11:00:00Z", propensity="high")
    lookups = {
        ("Lead", "Email"): {"a@x.example": ["00QA"], "b@x.example": ["00QB"]},
        ("Account", "Website"): {"analytical.example": ["001A"]},
    }
    plan = plan_for(cfg, [newer, older], lookups)  # order in the batch does not matter
    accounts = [w for w in plan.writes if w.object == "Account"]
    assert len(accounts) == 1 and accounts[0].fields == {"TS_Propensity__c": "high"}
    at = plan.writes.index(accounts[0])
    assert at in plan.uses[0] and at in plan.uses[1]


def test_propensity_miss_is_counted_never_created() -> None:
    cfg = config(target("Lead", create_if_missing=True), propensity=PROPENSITY)
    plan = plan_for(cfg, [event(), event(propensity=None)], {("Account", "Website"): {}})
    assert plan.propensity_misses == 1
    assert all(w.object == "Lead" for w in plan.writes)


def test_requests_group_objects_and_respect_the_size() -> None:
    cfg = config(target("Lead", create_if_missing=True), propensity=PROPENSITY)
    events = [event(email=f"p{i}@x.example", domain=f"d{i % 7}.example") for i in range(450)]
    found = {f"p{i}@x.example": [f"00Q{i:012d}AAA"] for i in range(300)}
    accounts = {f"d{i}.example": [f"001{i:012d}AAA"] for i in range(7)}
    plan = plan_for(cfg, events, {("Lead", "Email"): found, ("Account", "Website"): accounts})
    chunks = list(requests(plan, 200))
    assert [(m, a, len(idx)) for m, a, _, idx in chunks] == [
        ("PATCH", False, 200),
        ("PATCH", False, 107),
        ("POST", False, 150),
    ]
    for chunk in chunks:
        objects = [plan.writes[i].object for i in chunk.writes]
        assert objects == sorted(objects)  # at most one type switch per request
    assert sorted(i for c in chunks for i in c.writes) == list(range(len(plan.writes)))


def test_fold_applies_the_precedence_rules() -> None:
    uses = [[0, 1], [0, 2], [3], [], [0]]
    plan = Plan(uses=uses, targets=[set(u) for u in uses], errors=[[], [], [], [], []])
    stamp = datetime(2026, 11, 22, tzinfo=UTC)
    plan.writes = [Write("Lead", f"00Q{n}", {}, stamp) for n in range(3)]
    plan.writes.append(Write("Account", "001A", {}, stamp))
    ref = RecordRef(object="Lead", id="00QA", action="updated")
    results = [
        ref,
        PermanentError("bad", code="string_too_long"),
        TransientError("busy", code="unable_to_lock_row"),
        RecordRef(object="Account", id="001A", action="updated"),
    ]
    plan.errors[4].append(TransientError("lookup", code="x"))
    out = [item.outcome() for item in fold(plan, results)]
    assert [o.state for o in out] == [
        DeliveryState.FAILED,
        DeliveryState.RETRYING,
        DeliveryState.DELIVERED,
        DeliveryState.SKIPPED,
        DeliveryState.RETRYING,
    ]
    assert out[0].error is not None and out[0].error.code == "string_too_long"
    assert out[2].records == (results[3],) and out[3].reason == "record_not_found"
