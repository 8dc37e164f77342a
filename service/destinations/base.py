"""The seam between the pipeline and each CRM: a tiny sink contract.

A destination gets batches for one (org, destination) lane at a time: one
config, one set of credentials, up to `max_batch_size` work items. It returns
one `Outcome` per item, in order. Raising a `DeliveryError` means the whole
batch shares that fate (a `RateLimited` is backpressure: the lane waits
`retry_after` and tries again).

Two read-only calls serve the commands, never the pipeline: `lookup` (the records
a preview would match now) and `describe` (the field schemas check-config reads).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, TypeVar

from service.errors import DeliveryError
from service.metrics import Metrics
from service.models import (
    DeliveryState,
    DestinationConfig,
    ErrorInfo,
    EvaluationCompleted,
    RecordRef,
)
from service.ratelimit import Handoffs
from service.settings import Settings


@dataclass(frozen=True)
class WorkItem:
    """One (event, destination) delivery; `attempt` counts from 1."""

    event: EvaluationCompleted
    attempt: int = 1


@dataclass(frozen=True)
class Batch:
    config: DestinationConfig
    credentials: Mapping[str, Any]
    items: Sequence[WorkItem]


@dataclass(slots=True)
class Outcome:
    """Read-only by convention: not frozen, because destinations build one per
    record and a frozen dataclass's __init__ costs about four times as much."""

    state: DeliveryState
    records: tuple[RecordRef, ...] = ()
    reason: str | None = None
    error: ErrorInfo | None = None
    retry_after: float | None = None
    outage: bool = False  # failed with its whole destination: retry when that is back

    @classmethod
    def delivered(cls, records: Sequence[RecordRef]) -> Outcome:
        return cls(DeliveryState.DELIVERED, records=tuple(records))

    @classmethod
    def skipped(cls, reason: str) -> Outcome:
        return cls(DeliveryState.SKIPPED, reason=reason)

    @classmethod
    def from_error(cls, error: DeliveryError) -> Outcome:
        """`failed` for permanent errors, `retrying` (to be scheduled) for transient ones."""
        state = DeliveryState.RETRYING if error.retryable else DeliveryState.FAILED
        return cls(state, error=error.info(), retry_after=getattr(error, "retry_after", None))


OptionsT = TypeVar("OptionsT")


def options_from(cls: type[OptionsT], raw: Mapping[str, Any] | None, name: str) -> OptionsT:
    """A destination's options (a frozen dataclass) from `ctx.options[name]`: the one way
    every CRM reads them. A key the class does not know is refused, never ignored."""
    raw = dict(raw or {})
    unknown = set(raw) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise ValueError(f"unknown {name} options: {sorted(unknown)}")
    return cls(**raw)


@dataclass(frozen=True)
class RecordQuery:
    """A read-only question about one object: the record with this `id`, or the records
    whose `field` holds `value` (as a write would match them)."""

    object: str
    id: str | None = None
    field: str | None = None
    value: str | None = None


# What a lookup found: record ids, or what stands in the way (a converted Lead).
Found = list[str] | dict[str, Any]


def account_of(config: DestinationConfig) -> str:
    """The key of per-account state (rate windows, budgets, held tokens): the org's
    credentials file, stable when tokens rotate and never shared by two orgs."""
    return f"{config.org_id}/{config.integration.credentials_ref}"


@dataclass
class DestinationContext:
    """What every destination is built with."""

    settings: Settings
    metrics: Metrics
    options: dict[str, Any] = field(default_factory=dict)  # per-destination knobs (limits, linger)
    # Tenants taken over from another instance: hold their rate windows (ratelimit.py).
    handoffs: Handoffs = field(default_factory=Handoffs)


class Destination(Protocol):
    name: str
    max_batch_size: int

    async def setup(self) -> None:
        """Open pooled clients; called once before the first write."""

    async def write(self, batch: Batch) -> list[Outcome]:
        """Deliver the batch; one Outcome per item, same order."""
        ...

    async def close(self) -> None:
        """Release clients; called once at shutdown."""

    async def lookup(
        self, config: DestinationConfig, credentials: Mapping[str, Any], query: RecordQuery
    ) -> Found:
        """Read-only (preview --lookup): what `query` finds now. Writes nothing, learns
        nothing (no record cache)."""
        ...

    async def describe(
        self, config: DestinationConfig, credentials: Mapping[str, Any], objects: Collection[str]
    ) -> dict[str, Any]:
        """Read-only (check-config): object -> the CRM's own answer describing its fields,
        None when there is no such object."""
        ...
