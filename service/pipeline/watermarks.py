"""No stale overwrite (§6): the newest delivered evaluation per (org, destination, lead).

Held in memory and persisted to the compacted watermarks topic, so the rule
holds across restarts and replicas. Pure apart from the table callback. Instants
are held as epoch microseconds: the table has an entry per lead, and a plain int
costs the garbage collector nothing, where an aware datetime holds a tzinfo.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson

from service.models import epoch_us
from service.pipeline.work import Delivery


class Watermarks:
    def __init__(self) -> None:
        self._newest: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._newest)

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        """A record from the watermarks topic (ours, or another replica's)."""
        if key is None:
            return
        if value is None:
            self._newest.pop(key.decode(), None)
            return
        evaluated_at = datetime.fromisoformat(orjson.loads(value)["evaluated_at"])
        self.advance(key.decode(), epoch_us(evaluated_at))

    def advance(self, key: str, evaluated_at_us: int) -> bool:
        """Record a delivered evaluation; True when it is the newest so far."""
        held = self._newest.get(key)
        if held is not None and held >= evaluated_at_us:
            return False
        self._newest[key] = evaluated_at_us
        return True

    def split(self, batch: Sequence[Delivery]) -> tuple[list[Delivery], list[Delivery]]:
        """(fresh, stale): stale = older than the newest delivered one, or than a
        newer evaluation of the same lead in the same batch (the newest wins)."""
        newest_in_batch: dict[str, Delivery] = {}
        for delivery in batch:
            held = newest_in_batch.get(delivery.lead_key)
            if held is None or delivery.evaluated_at_us >= held.evaluated_at_us:
                newest_in_batch[delivery.lead_key] = delivery
        fresh, stale = [], []
        for delivery in batch:
            delivered = self._newest.get(delivery.lead_key)
            older = delivered is not None and delivery.evaluated_at_us < delivered
            if older or newest_in_batch[delivery.lead_key] is not delivery:
                stale.append(delivery)
            else:
                fresh.append(delivery)
        return fresh, stale
