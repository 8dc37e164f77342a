"""What a config would fail on, given the destination's field schemas. Pure.

For each target (and the propensity mapping): the object exists; every mapped
field exists, is writable (and settable on create when `create_if_missing`), and
its type can take what the service writes there; a field with fixed values
allows every value written (after a §4a `values` map); the match field exists
and can be searched. The §4a keys are read from the raw config, so this works
before and after the models learn them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.checkconfig.fields import ObjectFields, Schemas
from service.checkconfig.fit import field_problem, quote
from service.models import DestinationConfig, Match, Propensity, Score, Target

SCORES = tuple(s.value for s in Score)
LEVELS = tuple(p.value for p in Propensity)


@dataclass(frozen=True)
class Problem:
    where: str  # "target Lead.Rating", "propensity Account", ...
    what: str

    def line(self, config: DestinationConfig) -> str:
        return f"{config.org_id}/{config.destination} {self.where}: {self.what}"


def value_map(raw: Any, key: str) -> dict[str, str] | None:
    """`field_options.{key}.values` of a raw target (or `values` of raw propensity)."""
    if not isinstance(raw, dict):
        return None
    section = raw if key == "propensity" else (raw.get("field_options") or {}).get(key)
    values = section.get("values") if isinstance(section, dict) else None
    return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else None


def _unknown(name: str, fields: ObjectFields) -> str:
    close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.75)
    lower = [f for f in fields if f.lower() == name.lower()]
    hint = lower or close
    return f"no such field (did you mean {hint[0]}?)" if hint else "no such field"


def _written(key: str, raw: Any) -> tuple[dict[str, str], Problem | None]:
    """TrailSpark value -> value written, and a problem when a values map is partial."""
    words = LEVELS if key == "propensity" else SCORES if key == "score" else ()
    given = value_map(raw, key)
    if given is None:
        return {w: w for w in words}, None
    missing = [w for w in words if w not in given]
    problem = None
    if missing:
        what = f"{key}: the values map does not cover {quote(missing)} (the config is rejected)"
        problem = Problem("", what)
    return {w: given.get(w, w) for w in words}, problem


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
    target: Target | None,
    raw: Any,
    create: bool,
) -> list[Problem]:
    out: list[Problem] = []
    for key, name in mapping.items():
        where = f"{label} {obj}.{name}"
        info = fields.get(name)
        if info is None:
            out.append(Problem(where, f"{key}: {_unknown(name, fields)}"))
            continue
        written, partial = _written(key, raw)
        if partial is not None:
            out.append(Problem(where, partial.what))
        if not info.updateable:  # nothing else about it matters
            out.append(Problem(where, f"{key}: the field is read-only"))
            continue
        if create and not info.createable:
            out.append(Problem(where, f"{key}: cannot be set on create (create_if_missing)"))
        problem = field_problem(destination, key, info, target, written)
        if problem is not None:
            out.append(Problem(where, problem))
    return out


def _target(destination: str, target: Target, raw: Any, schemas: Schemas) -> list[Problem]:
    fields = schemas.get(target.object)
    if fields is None:
        kind = "table in the base" if destination == "airtable" else "object"
        return [Problem(f"target {target.object}", f"no such {kind}")]
    create = target.create_if_missing
    out = _match_problems(target.object, target.match, fields, create)
    mapping = {str(key): name for key, name in target.fields.items()}
    out += _mapped(destination, "target", target.object, mapping, fields, target, raw, create)
    for lead_field, column in target.create_fields.items():
        info = fields.get(column)
        where = f"target {target.object}.{column}"
        if info is None:
            out.append(Problem(where, f"create_fields {lead_field}: {_unknown(column, fields)}"))
        elif not info.createable:
            out.append(Problem(where, f"create_fields {lead_field}: the field is read-only"))
    return out


def check(config: DestinationConfig, raw: Mapping[str, Any], schemas: Schemas) -> list[Problem]:
    """Every problem of one validated config; `raw` is the same config as a dict."""
    listed = raw.get("targets")
    raw_targets: list[Any] = listed if isinstance(listed, list) else []
    out: list[Problem] = []
    for i, target in enumerate(config.targets):
        raw_target = raw_targets[i] if i < len(raw_targets) else {}
        out += _target(config.destination, target, raw_target, schemas)
    prop = config.propensity
    if prop is not None and prop.enabled and config.destination != "airtable":
        fields = schemas.get(prop.object)
        if fields is None:
            return [*out, Problem(f"propensity {prop.object}", "no such object")]
        out += _match_problems(prop.object, prop.match, fields, False)
        mapping = {"propensity": prop.field}
        out += _mapped(
            config.destination, "propensity", prop.object, mapping, fields, None,
            raw.get("propensity"), False,
        )  # fmt: skip
    return out


def objects_of(config: DestinationConfig) -> set[str]:
    """The objects (tables) whose schema the check needs."""
    names = {t.object for t in config.targets}
    prop = config.propensity
    if prop is not None and prop.enabled and config.destination != "airtable":
        names.add(prop.object)
    return names
