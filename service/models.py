"""Contract messages (../shared/CONTRACT.md §3-§5) as pydantic v2 models.

`python -m service.models --write schemas` exports the JSON Schemas; a test keeps
`schemas/` and these models from drifting apart.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.dataclasses import dataclass as pydantic_dataclass


def _in_utc_range(value: datetime) -> datetime:
    """`9999-12-31T23:30:00-01:00` is valid RFC 3339 but year 10000 in UTC, which
    Python cannot hold: refuse it here rather than crash where it is formatted.
    Only the first and last year can overflow, so the hot path costs one compare."""
    if value.year in (1, 9999):
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("date-time is outside the range of UTC date-times") from None
    return value


# RFC 3339 requires an offset; values are compared as instants and always written
# out in UTC by `rfc3339`.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc_range)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(value: datetime) -> int:
    """Microseconds since the epoch: an exact instant that, unlike an aware
    datetime, holds no tzinfo object for the garbage collector to walk."""
    return (value - _EPOCH) // _MICROSECOND


def json_bytes(obj: Any) -> bytes:
    """orjson.dumps, copied to its exact size, for records the service holds until
    the broker acks them. orjson >= 3.12 returns bytes that keep their whole write
    buffer (4 KB at least): 20,000 held statuses were 80 MB instead of 6 MB.
    See home-assistant/core#181240."""
    return bytes(memoryview(orjson.dumps(obj)))


@functools.lru_cache(maxsize=4096)
def rfc3339(value: datetime) -> str:
    """`2026-11-22T10:14:59.123Z`: UTC, milliseconds only when there are any.
    Cached: an event's `evaluated_at` is formatted for each of its destinations'
    deliveries and writes (equal instants in other zones format the same)."""
    value = value.astimezone(UTC)
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.removesuffix("+00:00") + "Z"


class Score(StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


class Propensity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class WriteMode(StrEnum):
    """Contract §4a `write`: always, or only into an empty CRM field."""

    ALWAYS = "always"
    IF_EMPTY = "if_empty"


class OnDuplicate(StrEnum):
    """Contract §4a `on_duplicate` (Salesforce): fail on a duplicate rule, or ask to save."""

    FAIL = "fail"
    ALLOW = "allow"


class Trigger(StrEnum):
    BATCH = "batch"
    RE_EVALUATION = "re_evaluation"
    MANUAL = "manual"


class DestinationId(StrEnum):
    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"
    AIRTABLE = "airtable"


class DeliveryState(StrEnum):
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    FAILED = "failed"
    RETRYING = "retrying"

    @property
    def terminal(self) -> bool:
        return self is not DeliveryState.RETRYING


class _In(BaseModel):
    """Inputs ignore unknown fields (contract §3)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


NonEmpty = Annotated[str, Field(min_length=1)]


# The event models are slotted, frozen pydantic dataclasses, not BaseModels: up
# to MAX_INFLIGHT events are alive at once, and a BaseModel adds a __dict__ and a
# fields-set per instance, 11 GC-tracked objects per event instead of 5.
_EVENT_CONFIG = ConfigDict(extra="ignore")


@pydantic_dataclass(frozen=True, slots=True, config=_EVENT_CONFIG)
class Lead:
    lead_id: NonEmpty
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    domain: str | None = None
    crm_ids: dict[str, dict[str, str]] = Field(default_factory=dict)


LEAD_FIELDS = frozenset(f"lead.{f.name}" for f in dataclass_fields(Lead) if f.name != "crm_ids")


@pydantic_dataclass(frozen=True, slots=True, config=_EVENT_CONFIG)
class Evaluation:
    evaluation_id: NonEmpty
    score: Score
    reasoning: str
    evaluated_at: UtcDatetime
    trigger: Trigger
    propensity: Propensity | None = None


@pydantic_dataclass(frozen=True, slots=True, config=_EVENT_CONFIG)
class EvaluationCompleted:
    schema_version: Literal[1]
    event_id: NonEmpty
    occurred_at: UtcDatetime
    org_id: NonEmpty
    lead: Lead
    evaluation: Evaluation


EVENT = TypeAdapter(EvaluationCompleted)  # .validate_json(bytes), .validate_python(dict)


class Match(_In):
    crm_field: NonEmpty
    event_field: NonEmpty


FieldKey = Literal["score", "reasoning", "evaluated_at"]
# TrailSpark value -> the value written (contract §4a); completeness: config/semantics.py.
ValueMap = dict[str, NonEmpty]


class FieldOption(_In):
    """Contract §4a `field_options.{key}`: a values map and when to write."""

    values: ValueMap | None = None
    write: WriteMode = WriteMode.ALWAYS


class Target(_In):
    object: NonEmpty
    match: Match | None = None
    fields: dict[FieldKey, NonEmpty]
    create_if_missing: bool = False
    # Extensions (optional): property types (HubSpot `date`), per-field length caps,
    # and the columns Airtable fills on create (lead field -> column).
    field_types: dict[FieldKey, Literal["datetime", "date"]] = Field(default_factory=dict)
    max_lengths: dict[FieldKey, Annotated[int, Field(gt=0)]] = Field(default_factory=dict)
    create_fields: dict[str, NonEmpty] = Field(default_factory=dict)
    # Salesforce only: let the org's Lead/Account assignment rules run when a record is
    # created (`Sforce-Auto-Assign: TRUE`); updates never reassign (docs/salesforce.md).
    assign_on_create: bool = False
    # Contract §4a (optional): values maps and if_empty per field; Salesforce duplicate rules
    # (None: `fail`, the default; config/semantics.py refuses it on other destinations).
    field_options: dict[FieldKey, FieldOption] = Field(default_factory=dict)
    on_duplicate: OnDuplicate | None = None


class PropensityMapping(_In):
    enabled: bool = True
    object: NonEmpty
    match: Match
    field: NonEmpty
    values: ValueMap | None = None  # contract §4a
    write: WriteMode = WriteMode.ALWAYS


class Integration(_In):
    id: str
    status: str
    credentials_ref: NonEmpty


class UpdatedBy(_In):
    user_id: str
    role: str


class DestinationConfig(_In):
    schema_version: Literal[1]
    org_id: NonEmpty
    destination: str
    version: int
    integration: Integration
    send_evaluations: bool
    targets: list[Target] = Field(default_factory=list)
    propensity: PropensityMapping | None = None
    updated_by: UpdatedBy
    # Extension (optional): the most of the org's daily API allocation this service
    # may spend, as a share (0.25 = a quarter); unset means no budget of our own.
    max_daily_api_share: Annotated[float, Field(gt=0, le=1)] | None = None

    @property
    def key(self) -> str:
        return f"{self.org_id}:{self.destination}"


@dataclass(frozen=True, slots=True)
class RecordRef:
    """A record written; a plain dataclass because destinations build one per write."""

    object: str
    id: str
    action: Literal["updated", "created"]


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    message: str
    retryable: bool
    http_status: int | None = None


class DeliveryStatus(BaseModel):
    schema_version: Literal[1] = 1
    event_id: str
    org_id: str
    lead_id: str
    evaluation_id: str
    destination: str
    status: DeliveryState
    reason: str | None = None
    records: list[RecordRef] = Field(default_factory=list)
    error: ErrorInfo | None = None
    attempts: int
    evaluated_at: str
    completed_at: str
    latency_ms: int


CONTRACT_MODELS: dict[str, TypeAdapter[Any]] = {
    "evaluation_completed": EVENT,
    "destination_config": TypeAdapter(DestinationConfig),
    "delivery_status": TypeAdapter(DeliveryStatus),
}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: adapter.json_schema() for name, adapter in CONTRACT_MODELS.items()}


def _write(folder: str) -> None:
    for name, schema in json_schemas().items():
        path = Path(folder) / f"{name}.schema.json"
        path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        print(f"wrote {path}")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--write"] or len(sys.argv) != 3:
        sys.exit("usage: python -m service.models --write DIR")
    _write(sys.argv[2])
