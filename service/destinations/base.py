"""The seam between the pipeline and each CRM: a tiny sink contract.

A destination gets batches for one (org, destination) lane at a time: one
config, one set of credentials, up to `max_batch_size` work items. It returns
one `Outcome` per item, in order. Raising a `DeliveryError` means the whole
batch shares that fate (a `RateLimited` is backpressure: the lane waits
`retry_after` and tries again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
