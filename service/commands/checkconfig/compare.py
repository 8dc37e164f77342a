"""What a config would fail on, given the destination's field schemas. Pure.

For each target (and the propensity mapping): the object exists; every mapped
field exists, is writable (and settable on create when `create_if_missing`), and
its type can take what the service writes there; a field with fixed values
allows every value written (after a §4a `values` map); the match field exists
and can be searched. A partial values map never gets here: validation rejects
the config first (`invalid_field_options`, exit 2).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from service.commands.checkconfig.fields import ObjectFields, Schemas
from service.commands.checkconfig.fit import field_problem
from service.models import DestinationConfig, Match, Propensity, Score, Target, ValueMap

SCORES = tuple(s.value for s in Score)
LEVELS = tuple(p.value for p in Propensity)


@dataclass(frozen=True)
class Problem:
    where: str  # "target Lead.Rating", "propensity Account", ...
    what: str

    def line(self, config: DestinationConfig) -> str:
        return f"{config.org_id}/{config.destination} {self.where}: {self.what}"


def value_map(config: DestinationConfig, target: Target | None, key: str) -> ValueMap | None:
    """`field_options.{key}.values` of a target (or `propensity.values`)."""
    if target is None:
        return config.propensity.values if config.propensity is not None else None
    option = target.field_options.get(key)  # type: ignore[call-overload]
    return option.values if option is not None else None


def _unknown(name: str, fields: ObjectFields) -> str:
    close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.75)
    lower = [f for f in fields if f.lower() == name.lower()]
    hint = lower or close
    return f"no such field (did you mean {hint[0]}?)" if hint else "no such field"


def _written(key: str, given: ValueMap | None) -> dict[str, str]:
    """TrailSpark value -> value written (validation made any map complete)."""
    words = LEVELS if key == "propensity" else SCORES if key == "score" else ()
    return {w: (given or {}).get(w, w) for w in words}


def _match_problems(
    obj: str, match: Match | None, fields: ObjectFields, create: bool
) -> list[Problem]:
    if match is None:
        return []
    where = f"{obj}.{match.crm_field}"
    info = fields.get(match.crm_field)
    if info is None:
        return [Problem(f"match {where}", _unknown(match.crm_field, fields))]
    if not info.filterable:
        return [Problem(f"match {where}", f"a {info.crm_type} field cannot be searched")]
    if create and not info.createable:
        return [Problem(f"match {where}", "cannot be set on create (create_if_missing)")]
    return []


def _mapped(
    destination: str,
    label: str,
    obj: str,
    mapping: Mapping[str, str],
    fields: ObjectFields,
    config: DestinationConfig,
    target: Target | None,
    create: bool,
) -> list[Problem]:
    out: list[Problem] = []
    for key, name in mapping.items():
        where = f"{label} {obj}.{name}"
        info = fields.get(name)
        if info is None:
            out.append(Problem(where, f"{key}: {_unknown(name, fields)}"))
            continue
        written = _written(key, value_map(config, target, key))
        if not info.updateable:  # nothing else about it matters
            out.append(Problem(where, f"{key}: the field is read-only"))
            continue
        if create and not info.createable:
            out.append(Problem(where, f"{key}: cannot be set on create (create_if_missing)"))
        problem = field_problem(destination, key, info, target, written)
        if problem is not None:
            out.append(Problem(where, problem))
    return out


def _target(config: DestinationConfig, target: Target, schemas: Schemas) -> list[Problem]:
    destination = config.destination
    fields = schemas.get(target.object)
    if fields is None:
        kind = "table in the base" if destination == "airtable" else "object"
        return [Problem(f"target {target.object}", f"no such {kind}")]
    create = target.create_if_missing
    out = _match_problems(target.object, target.match, fields, create)
    mapping = {str(key): name for key, name in target.fields.items()}
    out += _mapped(destination, "target", target.object, mapping, fields, config, target, create)
    for lead_field, column in target.create_fields.items():
        info = fields.get(column)
        where = f"target {target.object}.{column}"
        if info is None:
            out.append(Problem(where, f"create_fields {lead_field}: {_unknown(column, fields)}"))
        elif not info.createable:
            out.append(Problem(where, f"create_fields {lead_field}: the field is read-only"))
    return out


def check(config: DestinationConfig, schemas: Schemas) -> list[Problem]:
    """Every problem of one validated config."""
    out: list[Problem] = []
    for target in config.targets:
        out += _target(config, target, schemas)
    prop = config.propensity
    if prop is not None and prop.enabled and config.destination != "airtable":
        fields = schemas.get(prop.object)
        if fields is None:
            return [*out, Problem(f"propensity {prop.object}", "no such object")]
        out += _match_problems(prop.object, prop.match, fields, False)
        mapping = {"propensity": prop.field}
        out += _mapped(
            config.destination, "propensity", prop.object, mapping, fields, config, None, False
        )
    return out


def objects_of(config: DestinationConfig) -> set[str]:
    """The objects (tables) whose schema the check needs."""
    names = {t.object for t in config.targets}
    prop = config.propensity
    if prop is not None and prop.enabled and config.destination != "airtable":
        names.add(prop.object)
    return names
