"""schemas/ is generated from the pydantic models; this fails when they drift,
and checks the contract's own example messages against both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from devkit.factories import make_config, make_event
from service.models import CONTRACT_MODELS, json_schemas

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

EXAMPLE_STATUS: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "0b7c3f5e-6a51-4f0e-9d7c-2b1c8f1f9a10",
    "org_id": "org_123",
    "lead_id": "lead_456",
    "evaluation_id": "eval_789",
    "destination": "salesforce",
    "status": "delivered",
    "reason": None,
    "records": [{"object": "Lead", "id": "00Q5g00000AbCdE", "action": "updated"}],
    "error": None,
    "attempts": 1,
    "evaluated_at": "2026-11-22T10:14:59Z",
    "completed_at": "2026-11-22T10:15:00.210Z",
    "latency_ms": 210,
}
EXAMPLES = {
    "evaluation_completed": make_event(),
    "destination_config": make_config("salesforce"),
    "delivery_status": EXAMPLE_STATUS,
}


@pytest.mark.parametrize("name", sorted(CONTRACT_MODELS))
def test_schema_file_matches_model(name: str) -> None:
    on_disk = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    assert on_disk == json_schemas()[name], "run `make schemas` and commit the result"


@pytest.mark.parametrize("name", sorted(CONTRACT_MODELS))
def test_examples_valid_for_schema_and_model(name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.validate(EXAMPLES[name], schema)
    CONTRACT_MODELS[name].validate_python(EXAMPLES[name])


def test_schema_rejects_what_the_model_rejects() -> None:
    schema = json.loads((SCHEMAS / "evaluation_completed.schema.json").read_text())
    bad = make_event()
    bad["evaluation"]["score"] = "scorching"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
