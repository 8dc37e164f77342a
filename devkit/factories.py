"""Builders for contract messages in tests: valid by default, override anything."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from service.destinations.base import Batch, WorkItem
from service.models import EVENT, DestinationConfig

_clock = itertools.count()
BASE_TIME = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def _ts(seconds: int) -> str:
    return (BASE_TIME + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_event(
    org_id: str = "org_1",
    lead_id: str | None = None,
    *,
    score: str = "hot",
    reasoning: str = "Visited pricing 4x this week; ICP match.",
    evaluated_at: str | None = None,
    propensity: str | None = "high",
    crm_ids: dict[str, dict[str, str]] | None = None,
    **lead: Any,
) -> dict[str, Any]:
    """An EvaluationCompleted dict; each call is a newer evaluation than the last."""
    n = next(_clock)
    lead_id = lead_id or f"lead_{n}"
    lead_fields = {
        "email": f"{lead_id}@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Analytical Engines Ltd",
        "domain": "analytical.example",
        **lead,
    }
    return {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "occurred_at": _ts(n + 1),
        "org_id": org_id,
        "lead": {"lead_id": lead_id, **lead_fields, "crm_ids": crm_ids or {}},
        "evaluation": {
            "evaluation_id": f"eval_{n}",
            "score": score,
            "reasoning": reasoning,
            "evaluated_at": evaluated_at or _ts(n),
            "trigger": "batch",
            "propensity": propensity,
        },
    }


DEFAULT_TARGETS: dict[str, list[dict[str, Any]]] = {
    "salesforce": [
        {
            "object": "Lead",
            "match": {"crm_field": "Email", "event_field": "lead.email"},
            "fields": {
                "score": "TS_Score__c",
                "reasoning": "TS_Reasoning__c",
                "evaluated_at": "TS_Evaluated_At__c",
            },
            "create_if_missing": False,
        }
    ],
    "hubspot": [
        {
            "object": "contacts",
            "match": {"crm_field": "email", "event_field": "lead.email"},
            "fields": {
                "score": "ts_score",
                "reasoning": "ts_reasoning",
                "evaluated_at": "ts_evaluated_at",
            },
            "create_if_missing": True,
        }
    ],
    "airtable": [
        {
            "object": "Contacts",
            "match": {"crm_field": "Email", "event_field": "lead.email"},
            "fields": {
                "score": "TS Score",
                "reasoning": "TS Reasoning",
                "evaluated_at": "TS Evaluated At",
            },
            "create_if_missing": True,
            "create_fields": {"email": "Email", "first_name": "First Name"},
        }
    ],
}


def make_config(
    destination: str = "salesforce", org_id: str = "org_1", *, version: int = 1, **overrides: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "schema_version": 1,
        "org_id": org_id,
        "destination": destination,
        "version": version,
        "integration": {
            "id": f"int_{destination}",
            "status": "connected",
            "credentials_ref": f"{org_id}-{destination}",
        },
        "send_evaluations": True,
        "targets": DEFAULT_TARGETS[destination],
        "propensity": None,
        "updated_by": {"user_id": "u_1", "role": "owner"},
    }
    config.update(overrides)
    return config


def make_batch(
    config: dict[str, Any], events: list[dict[str, Any]], credentials: dict[str, Any]
) -> Batch:
    """A Batch as the pipeline hands it to a destination's `write`."""
    return Batch(
        config=DestinationConfig.model_validate(config),
        credentials=credentials,
        items=[WorkItem(EVENT.validate_python(e)) for e in events],
    )
