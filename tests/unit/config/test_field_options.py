"""Validation of the contract §4a config keys (issue 22): values maps must be complete,
`write` is `always` or `if_empty`, `on_duplicate` is for Salesforce targets only. Each
refusal is `invalid_field_options`, counted, and the previous config stays."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from devkit.factories import DEFAULT_TARGETS, make_config
from service.config.store import ConfigStore
from service.config.validation import parse
from service.errors import ConfigRejected
from service.metrics import Metrics
from service.models import OnDuplicate, WriteMode

SCORES = {"hot": "Hot", "warm": "Warm", "cold": "Cold"}
LEVELS = {"high": "A", "medium": "B", "low": "C"}
PROPENSITY = {
    "enabled": True,
    "object": "Account",
    "match": {"crm_field": "Website", "event_field": "lead.domain"},
    "field": "Rating",
}


def target(destination: str = "salesforce", **extra: Any) -> dict[str, Any]:
    return {**DEFAULT_TARGETS[destination][0], **extra}


def config(destination: str = "salesforce", **extra: Any) -> dict[str, Any]:
    return make_config(destination, **extra)


def rejection(raw: dict[str, Any]) -> ConfigRejected:
    with pytest.raises(ConfigRejected) as caught:
        parse(orjson.dumps(raw))
    return caught.value


def test_a_config_without_the_keys_parses_as_before() -> None:
    parsed = parse(orjson.dumps(config(propensity=PROPENSITY)))
    [t] = parsed.targets
    assert t.field_options == {} and t.on_duplicate is None
    assert parsed.propensity is not None and parsed.propensity.values is None
    assert parsed.propensity.write is WriteMode.ALWAYS


def test_complete_maps_and_every_write_mode_are_accepted() -> None:
    options = {
        "score": {"values": SCORES, "write": "always"},
        "reasoning": {"write": "if_empty"},
        "evaluated_at": {"write": "if_empty"},
    }
    raw = config(
        targets=[target(field_options=options, on_duplicate="allow")],
        propensity={**PROPENSITY, "values": LEVELS, "write": "if_empty"},
    )
    parsed = parse(orjson.dumps(raw))
    [t] = parsed.targets
    assert t.field_options["score"].values == SCORES
    assert t.field_options["reasoning"].write is WriteMode.IF_EMPTY
    assert t.on_duplicate is OnDuplicate.ALLOW
    assert parsed.propensity is not None and parsed.propensity.values == LEVELS
    assert parsed.propensity.write is WriteMode.IF_EMPTY


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            config(targets=[target(field_options={"score": {"values": {"hot": "Hot"}}})]),
            "targets[0].field_options.score.values: the score values map does not cover "
            "'warm', 'cold'",
        ),
        (
            config(targets=[target(field_options={"score": {"values": {**SCORES, "tepid": "T"}}})]),
            "'tepid' is not a score value",
        ),
        (
            config(propensity={**PROPENSITY, "values": {"high": "A", "low": "C"}}),
            "propensity.values: the propensity values map does not cover 'medium'",
        ),
        (
            config(targets=[target(field_options={"reasoning": {"values": {"hot": "x"}}})]),
            "reasoning takes no values map",
        ),
        (
            config(targets=[target(field_options={"evaluated_at": {"values": {}}})]),
            "evaluated_at takes no values map",
        ),
        (
            config(
                targets=[
                    target(
                        fields={"score": "Rating"},
                        field_options={"reasoning": {"write": "if_empty"}},
                    )
                ]
            ),
            "targets[0].field_options.reasoning: reasoning is not in the target's fields",
        ),
        (
            config(
                "hubspot",
                targets=[target("hubspot", on_duplicate="allow")],
            ),
            "targets[0].on_duplicate: only Salesforce targets have duplicate rules",
        ),
        (
            config("airtable", targets=[target("airtable", on_duplicate="fail")]),
            "only Salesforce targets have duplicate rules",
        ),
    ],
)
def test_incomplete_or_misplaced_options_are_rejected(raw: dict[str, Any], message: str) -> None:
    rejected = rejection(raw)
    assert rejected.reason == "invalid_field_options"
    assert message in rejected.message


@pytest.mark.parametrize(
    "raw",
    [
        config(targets=[target(field_options={"reasoning": {"write": "sometimes"}})]),
        config(targets=[target(field_options={"score": {"write": "IF_EMPTY"}})]),
        config(targets=[target(field_options={"score": {"values": {**SCORES, "hot": 3}}})]),
        config(targets=[target(field_options={"score": {"values": {**SCORES, "hot": ""}}})]),
        config(targets=[target(field_options={"propensity": {"write": "if_empty"}})]),
        config(targets=[target(field_options={"score": "Hot"})]),
        config(targets=[target(on_duplicate="skip")]),
        config(propensity={**PROPENSITY, "write": "never"}),
        config(propensity={**PROPENSITY, "values": ["Hot", "Warm", "Cold"]}),
    ],
)
def test_bad_types_in_the_keys_are_invalid_field_options(raw: dict[str, Any]) -> None:
    assert rejection(raw).reason == "invalid_field_options"


def test_a_rejected_config_is_counted_and_the_previous_one_stays() -> None:
    metrics = Metrics()
    store = ConfigStore(metrics)
    key = b"org_1:salesforce"
    store.apply_record(key, orjson.dumps(config(version=1)))
    partial = config(version=2, targets=[target(field_options={"score": {"values": {"hot": "H"}}})])
    store.apply_record(key, orjson.dumps(partial))
    bad_write = config(version=3, targets=[target(field_options={"score": {"write": "maybe"}})])
    store.apply_record(key, orjson.dumps(bad_write))
    held = store.get("org_1", "salesforce")
    assert held is not None and held.version == 1
    count = metrics.registry.get_sample_value(
        "trailspark_destinations_configs_rejected_total", {"reason": "invalid_field_options"}
    )
    assert count == 2
