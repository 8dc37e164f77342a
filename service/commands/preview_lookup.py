"""`preview --lookup`: the records an event would match now, with read-only calls only.

Each destination answers through the `Destination` protocol's `lookup`:
Salesforce runs SOQL queries (GET), HubSpot batch/read and search (POSTs that
read), Airtable lists with a formula or GETs one record. Credentials come from
`$SECRETS_DIR/{credentials_ref}.json` and `DESTINATION_CA_FILE` is trusted, as
in the service; no Kafka setting is read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from service.destinations import build_readers
from service.destinations.base import RecordQuery
from service.errors import DeliveryError
from service.models import DestinationConfig, EvaluationCompleted
from service.secrets import SecretStore

DEFAULT_SECRETS_DIR = "/var/run/secrets/trailspark"


def query_of(obj: str, record: dict[str, Any]) -> RecordQuery:
    """The preview's `record` ({"by": "crm_id", "id"} or {"by": "match", "field", "value"})."""
    if record["by"] == "crm_id":
        return RecordQuery(obj, id=record["id"])
    return RecordQuery(obj, field=record["field"], value=record["value"])


async def look_up(
    configs: list[DestinationConfig], event: EvaluationCompleted, previews: list[dict[str, Any]]
) -> None:
    """Add `matched` (record ids, or what stands in the way) to each previewed record."""
    secrets = SecretStore(Path(os.environ.get("SECRETS_DIR") or DEFAULT_SECRETS_DIR))
    ca = os.environ.get("DESTINATION_CA_FILE")
    destinations = build_readers(Path(ca) if ca else None)
    try:
        for config, preview in zip(configs, previews, strict=True):
            data = secrets.load(config)
            destination = destinations[config.destination]
            parts = [*preview["targets"]]
            if isinstance(preview.get("propensity"), dict) and "record" in preview["propensity"]:
                parts.append(preview["propensity"])
            for part in parts:
                record = part["record"]
                if record["by"] == "nothing" or record.get("value", "") is None:
                    continue
                query = query_of(part["object"], record)
                try:  # an answer no parser foresaw is bad_response here too
                    part["matched"] = await destination.lookup(config, data, query)
                except DeliveryError as exc:
                    part["matched"] = {"error": exc.code, "message": exc.message}
    finally:
        for destination in destinations.values():
            await destination.close()
