"""Whether a field's type and values can take what the service writes there. Pure.

score and propensity are one of a few words (or their mapped values), reasoning
is free text, evaluated_at is a date-time (or, with `field_types.evaluated_at:
date`, a day: YYYY-MM-DD for Salesforce, epoch milliseconds for HubSpot and
Airtable). Each function answers the problem in words, or None when it fits.
"""

from __future__ import annotations

from service.commands.checkconfig.fields import FieldInfo, Kind
from service.models import Target

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


def quote(values: list[str] | tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values)


def _choice_values(key: str, info: FieldInfo, written: dict[str, str], mapped: bool) -> str | None:
    if info.takes_list:
        return f"{key}: a {info.crm_type} field takes a list; the service writes one value"
    refused = [v for v in dict.fromkeys(written.values()) if v not in info.choices]
    if not refused:
        return None
    allowed = f"allowed: [{', '.join(info.choices)}]"
    if mapped:
        return (
            f"{key}: the values map writes {quote(refused)}, not allowed by this field ({allowed})"
        )
    where = "propensity.values" if key == "propensity" else f"field_options.{key}.values"
    return (
        f"{key}: {quote(refused)} would be refused by this {info.crm_type} field "
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


def field_problem(
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
