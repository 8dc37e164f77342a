"""The latest outcome per (org, destination), for the status endpoint.

Fed by the Settler with every delivery it settles (the final outcome). Bounded: it keeps
at most `max_entries` pairs and forgets the least recently settled one first,
so an instance that has seen many orgs does not grow without end.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.models import DeliveryState

if TYPE_CHECKING:
    from service.destinations.base import Outcome
    from service.pipeline.work import Delivery

MAX_ENTRIES = 50_000


@dataclass(slots=True)
class LastOutcome:
    status: str | None = None
    status_at: str | None = None
    error_code: str | None = None
    error_at: str | None = None
    delivered_at: str | None = None


class LastOutcomes:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], LastOutcome] = OrderedDict()

    def get(self, org_id: str, destination: str) -> LastOutcome | None:
        return self._entries.get((org_id, destination))

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, delivery: Delivery, outcome: Outcome, now_text: str) -> None:
        """A settled delivery (its final outcome); `now_text` is its completed_at."""
        self.record(delivery.event.org_id, delivery.destination, outcome, now_text)

    def record(self, org_id: str, destination: str, outcome: Outcome, now_text: str) -> None:
        key = (org_id, destination)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = LastOutcome()
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        entry.status = outcome.state.value
        entry.status_at = now_text
        if outcome.error is not None:
            entry.error_code = outcome.error.code
            entry.error_at = now_text
        if outcome.state is DeliveryState.DELIVERED:
            entry.delivered_at = now_text
