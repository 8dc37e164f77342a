"""Pure mapping from an evaluation to Salesforce field values (contract §4)."""

from __future__ import annotations

from typing import Any

from service.destinations.mapping import OnTruncate, mapped_values, truncate
from service.models import DestinationConfig, EvaluationCompleted, Match, Target

# Long Text Area, the documented home of the reasoning: 131,072 characters.
DEFAULT_TEXT_LIMIT = 131_072
# Standard field lengths (Lead/Contact FirstName 40, LastName 80; Company, Account Name 255).
STANDARD_LIMITS = {"FirstName": 40, "LastName": 80, "Company": 255, "Name": 255}


def target_values(
    target: Target, event: EvaluationCompleted, *, default_limit: int, on_truncate: OnTruncate
) -> dict[str, Any]:
    """Mapped score, reasoning and evaluated_at for one target."""
    values = mapped_values(target, event, default_limit=default_limit, on_truncate=on_truncate)
    field = target.fields.get("evaluated_at")
    if field is not None and target.field_types.get("evaluated_at") == "date":
        # A Salesforce Date field takes YYYY-MM-DD, not HubSpot's epoch milliseconds.
        values[field] = event.evaluation.evaluated_at.date().isoformat()
    return values


def _standard(obj: str, event: EvaluationCompleted) -> dict[str, str | None]:
    lead = event.lead
    local = lead.email.split("@", 1)[0] or None if lead.email else None
    last = lead.last_name or local or "Unknown"
    if obj == "Lead":  # LastName and Company are required
        company = lead.company or lead.domain or "Unknown"
        return {
            "FirstName": lead.first_name,
            "LastName": last,
            "Company": company,
            "Email": lead.email,
        }
    if obj == "Contact":  # LastName is required
        return {"FirstName": lead.first_name, "LastName": last, "Email": lead.email}
    if obj == "Account":  # Name is required
        return {"Name": lead.company or lead.domain or "Unknown", "Website": lead.domain}
    return {}


def create_values(
    target: Target,
    event: EvaluationCompleted,
    match_value: str | None,
    *,
    default_limit: int,
    on_truncate: OnTruncate,
) -> dict[str, Any]:
    """A new record: the lead's standard fields, the match field, the mapped fields."""
    out: dict[str, Any] = {}
    for name, value in _standard(target.object, event).items():
        if not value:  # absent from the lead: leave the field alone, never write ""
            continue
        if name in STANDARD_LIMITS:
            value, cut = truncate(value, STANDARD_LIMITS[name])
            if cut:
                on_truncate(name)
        out[name] = value
    if target.match is not None and match_value is not None:
        out[target.match.crm_field] = match_value
    out.update(target_values(target, event, default_limit=default_limit, on_truncate=on_truncate))
    return out


def match_names(match: Match | None) -> tuple[str, str] | None:
    return (match.crm_field, match.event_field) if match is not None else None


def preview_values(
    config: DestinationConfig,
    target: Target,
    event: EvaluationCompleted,
    match_value: str | None,
    on_truncate: OnTruncate,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `preview` shows: the fields an update writes, and what a create writes."""
    limit = DEFAULT_TEXT_LIMIT
    fields = target_values(target, event, default_limit=limit, on_truncate=on_truncate)
    create = create_values(target, event, match_value, default_limit=limit, on_truncate=on_truncate)
    return fields, create
