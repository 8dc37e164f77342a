"""Validation of DestinationConfig records (contract §4). Pure: bytes in, model or
`ConfigRejected(reason)` out. The reason words are the metric labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from service.config import semantics
from service.credentials import ref_problem
from service.errors import ConfigRejected
from service.models import LEAD_FIELDS, DestinationConfig, Match


@dataclass(frozen=True)
class DestinationSpec:
    objects: frozenset[str] | None  # None: any name (Airtable tables are user-named)
    propensity_objects: frozenset[str]  # empty: propensity is not allowed


SPECS: dict[str, DestinationSpec] = {
    "salesforce": DestinationSpec(
        frozenset({"Lead", "Contact", "Account"}), frozenset({"Account"})
    ),
    "hubspot": DestinationSpec(frozenset({"contacts", "companies"}), frozenset({"companies"})),
    "airtable": DestinationSpec(None, frozenset()),
}
ROLES = frozenset({"owner", "admin"})


def _check_match(match: Match | None, where: str) -> None:
    if match is not None and match.event_field not in LEAD_FIELDS:
        raise ConfigRejected(
            "invalid_match_field",
            f"{where}.match.event_field {match.event_field!r} is not one of {sorted(LEAD_FIELDS)}",
        )


def validate(config: DestinationConfig, key: str | None = None) -> DestinationConfig:
    spec = SPECS.get(config.destination)
    if spec is None:
        raise ConfigRejected("unknown_destination", f"unknown destination {config.destination!r}")
    if key is not None and key != config.key:
        raise ConfigRejected("key_mismatch", f"record key {key!r} does not match {config.key!r}")
    if config.updated_by.role not in ROLES:
        raise ConfigRejected("unauthorized_role", f"role {config.updated_by.role!r} may not save")
    problem = ref_problem(config.integration.credentials_ref, config.org_id, config.destination)
    if problem is not None:  # another org's file, or a path: see service/credentials.py
        raise ConfigRejected("invalid_credentials_ref", problem)
    if config.send_evaluations and not config.targets:
        raise ConfigRejected("no_targets", "send_evaluations is true but targets is empty")
    for i, target in enumerate(config.targets):
        if spec.objects is not None and target.object not in spec.objects:
            raise ConfigRejected(
                "unknown_object", f"{config.destination} has no object {target.object!r}"
            )
        if not target.fields:
            raise ConfigRejected("empty_fields", f"targets[{i}].fields is empty")
        _check_match(target.match, f"targets[{i}]")
        for lead_field in target.create_fields:
            if f"lead.{lead_field}" not in LEAD_FIELDS and lead_field not in LEAD_FIELDS:
                raise ConfigRejected("invalid_create_field", f"{lead_field!r} is not a lead field")
    propensity = config.propensity
    if propensity is not None and propensity.enabled:
        if not spec.propensity_objects:
            raise ConfigRejected(
                "propensity_not_supported", f"{config.destination} does not take propensity"
            )
        if propensity.object not in spec.propensity_objects:
            raise ConfigRejected(
                "unknown_object", f"propensity goes to {sorted(spec.propensity_objects)} only"
            )
        _check_match(propensity.match, "propensity")
    semantics.check(config)
    return config


def parse(value: bytes, key: str | None = None) -> DestinationConfig:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ConfigRejected("invalid_json", str(exc)) from None
    return validate(parse_obj(data), key)


def _field_options(loc: tuple[int | str, ...]) -> bool:
    """A type error in a §4a key (`write: sometimes`, `on_duplicate: skip`, a map of numbers)."""
    if "field_options" in loc or "on_duplicate" in loc:
        return True
    return loc[:1] == ("propensity",) and len(loc) > 1 and loc[1] in ("values", "write")


def parse_obj(data: object) -> DestinationConfig:
    try:
        return DestinationConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = "unsupported_schema_version" if where == "schema_version" else "invalid_schema"
        if _field_options(first["loc"]):
            reason = semantics.REASON
        raise ConfigRejected(reason, f"{where}: {first['msg']}") from None
