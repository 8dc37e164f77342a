"""An in-memory destination: the fake behind the `Destination` protocol.

Used by tests, the throughput benchmark and the demo. It keeps the newest
event id per lead (ids only, like a CRM that lives in another process: holding
whole events would grow the service's heap and slow its garbage collector), can
be slowed down, and can be told to fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.destinations.base import Batch, Found, Outcome, RecordQuery
from service.errors import DeliveryError
from service.models import DestinationConfig, EvaluationCompleted, RecordRef


@dataclass
class MemoryDestination:
    name: str = "salesforce"
    max_batch_size: int = 500
    delay_s: float = 0.0
    slow_orgs: dict[str, float] = field(default_factory=dict)  # org id -> extra delay per batch
    # Called per event; return an error to fail (or retry) that event.
    fault: Callable[[EvaluationCompleted], DeliveryError | None] | None = None
    records: dict[tuple[str, str], str] = field(default_factory=dict)  # -> event id
    writes: list[str] = field(default_factory=list)  # event ids, in write order
    batches: int = 0

    async def setup(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def write(self, batch: Batch) -> list[Outcome]:
        self.batches += 1
        delay = self.delay_s + self.slow_orgs.get(batch.config.org_id, 0.0)
        if delay:
            await asyncio.sleep(delay)
        outcomes = []
        for item in batch.items:
            event = item.event
            error = self.fault(event) if self.fault else None
            if error is not None:
                outcomes.append(Outcome.from_error(error))
                continue
            self.records[(event.org_id, event.lead.lead_id)] = event.event_id
            self.writes.append(event.event_id)
            obj = batch.config.targets[0].object if batch.config.targets else "Lead"
            ref = RecordRef(object=obj, id=event.lead.lead_id, action="updated")
            outcomes.append(Outcome.delivered([ref]))
        return outcomes

    async def lookup(
        self, config: DestinationConfig, credentials: Mapping[str, Any], query: RecordQuery
    ) -> Found:
        """Records are kept by lead id: one named by id is found once written."""
        held = {lead for org, lead in self.records if org == config.org_id}
        return [query.id] if query.id in held else []

    async def describe(
        self, config: DestinationConfig, credentials: Mapping[str, Any], objects: Collection[str]
    ) -> dict[str, Any]:
        """No schema: an object with no field list (None would say it does not exist)."""
        return {obj: {} for obj in objects}
