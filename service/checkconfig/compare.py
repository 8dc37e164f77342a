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

from service.checkconfig.fields import FieldInfo, Kind, ObjectFields, Schemas
from service.models import DestinationConfig, Match, Propensity, Score, Target

SCORES = tuple(s.value for s in Score)
LEVELS = tuple(p.value for p in Propensity)
# What the service writes for evaluated_at: ISO date-time text, YYYY-MM-DD
# (Salesforce with field_types date) or epoch milliseconds (HubSpot and Airtable).
DAY_FORM = {"salesforce": "day", "hubspot": "epoch_ms", "airtable": "epoch_ms"}
DATE_FIELD = {
    "salesforce": "a Date field: Salesforce refuses a date-time there "
    "(set field_types.evaluated_at: date to write the day, or use a DateTime field)",
    "hubspot": "a date property: HubSpot refuses a date-time there "
    "(set field_types.evaluated_at: date to write midnight UTC, or use a datetime property)",
    "airtable": "a date field: Airtable keeps the day only and the time of evaluation "
    "is lost (use a dateTime field)",
}


@dataclass(frozen=True)
class Problem:
    where: str  # "target Lead.Rating", "propensity Account", ...
    what: str

    def line(self, config: DestinationConfig) -> str:
        return f"{config.org_id}/{config.destination} {self.where}: {self.what}"


def _quote(values: list[str] | tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values)


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


def _choice_values(key: str, info: FieldInfo, written: dict[str, str], mapped: bool) -> str | None:
    if info.takes_list:
        return f"{key}: a {info.crm_type} field takes a list; the service writes one value"
    refused = [v for v in dict.fromkeys(written.values()) if v not in info.choices]
    if not refused:
        return None
    allowed = f"allowed: [{', '.join(info.choices)}]"
    if mapped:
        return (
            f"{key}: the values map writes {_quote(refused)}, not allowed by this field ({allowed})"
        )
    where = "propensity.values" if key == "propensity" else f"field_options.{key}.values"
    return (
        f"{key}: {_quote(refused)} would be refused by this {info.crm_type} field "
        f"({allowed}); map them with {where}"
    )


def _text_problem(key: str, info: FieldInfo, written: dict[str, str], mapped: bool) -> str | None:
    """score / propensity: one of a few words (or their mapped values)."""
    if info.kind is Kind.TEXT:
        return None
    if info.kind is Kind.CHOICE:
        return _choice_values(key, info, written, mapped)
    sample = next(iter(written.values()))
    if info.kind is Kind.EMAIL:
        return f"{key}: an email field cannot take {sample!r}"
    return f"{key}: a {info.crm_type} field cannot take the text {sample!r}"


def _date_problem(destination: str, target: Target | None, info: FieldInfo) -> str | None:
    day = target is not None and target.field_types.get("evaluated_at") == "date"
    form = DAY_FORM[destination] if day else "datetime"
    fits = {
        "datetime": {Kind.DATETIME, Kind.TEXT},
        "day": {Kind.DATE, Kind.DATETIME, Kind.TEXT},
        "epoch_ms": {Kind.DATE, Kind.DATETIME, Kind.NUMBER, Kind.TEXT}
        if destination == "hubspot"
        else {Kind.NUMBER},
    }[form]
    if info.kind in fits:
        return None
    if form == "datetime" and info.kind is Kind.DATE:
        return f"evaluated_at: {DATE_FIELD[destination]}"
    if form == "epoch_ms" and destination == "airtable":
        return (
            "evaluated_at: field_types.evaluated_at: date makes the service write epoch "
            f"milliseconds, which a {info.crm_type} field refuses (remove it for Airtable)"
        )
    return f"evaluated_at: a {info.crm_type} field cannot take a date-time"


def _field_problem(
    destination: str, key: str, info: FieldInfo, target: Target | None, written: dict[str, str]
) -> str | None:
    if key == "evaluated_at":
        return _date_problem(destination, target, info)
    if key == "reasoning":
        if info.kind is Kind.TEXT:
            return None
        if info.kind is Kind.CHOICE:
            return f"reasoning: free text cannot go into a {info.crm_type} field with fixed values"
        return f"reasoning: a {info.crm_type} field cannot take free text"
    mapped = any(word != value for word, value in written.items())
    return _text_problem(key, info, written, mapped)


def _written(key: str, raw: Any) -> tuple[dict[str, str], Problem | None]:
    """TrailSpark value -> value written, and a problem when a values map is partial."""
    words = LEVELS if key == "propensity" else SCORES if key == "score" else ()
    given = value_map(raw, key)
    if given is None:
        return {w: w for w in words}, None
    missing = [w for w in words if w not in given]
    problem = None
    if missing:
        what = f"{key}: the values map does not cover {_quote(missing)} (the config is rejected)"
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
        problem = _field_problem(destination, key, info, target, written)
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
