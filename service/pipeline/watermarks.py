"""No stale overwrite and no duplicate write (§6), per (org, destination, lead).

The newest delivered evaluation (its `evaluated_at` and `evaluation_id`) is kept
in the partition's state store (state.py). A delivery older than it is stale; one
with the same `evaluated_at` and evaluation id was already delivered, so it is a
duplicate (a redelivery after a crash or rebalance) and is not written again.
Within a batch, the newest evaluation of a lead wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.pipeline.state import StateStores
from service.pipeline.work import Delivery


class Watermarks:
    def __init__(self, stores: StateStores) -> None:
        self.stores = stores

    def advance(self, d: Delivery) -> bool:
        """Record a delivered evaluation; True when it is newer than what was held."""
        partition = d.job.tp.partition
        held = self.stores.get(partition, d.lead_key)
        if held is not None and held[0] >= d.evaluated_at_us:
            return False
        self.stores.put(
            partition, d.lead_key, (d.evaluated_at_us, d.event.evaluation.evaluation_id)
        )
        return True

    def split(
        self, batch: Sequence[Delivery]
    ) -> tuple[list[Delivery], list[Delivery], list[Delivery]]:
        """(fresh, stale, duplicate)."""
        newest: dict[str, Delivery] = {}
        for d in batch:
            held = newest.get(d.lead_key)
            if held is None or d.evaluated_at_us >= held.evaluated_at_us:
                newest[d.lead_key] = d
        fresh: list[Delivery] = []
        stale: list[Delivery] = []
        duplicate: list[Delivery] = []
        for d in batch:
            mark = self.stores.get(d.job.tp.partition, d.lead_key)
            winner = newest[d.lead_key]
            if mark is not None and _same(d, mark):  # delivered, even if a newer one waits
                duplicate.append(d)
            elif (mark is not None and d.evaluated_at_us < mark[0]) or (
                d.evaluated_at_us < winner.evaluated_at_us
            ):
                stale.append(d)
            elif winner is not d and (
                d.event.evaluation.evaluation_id == winner.event.evaluation.evaluation_id
            ):
                duplicate.append(d)
            elif winner is not d:  # same instant, another evaluation: the last one wins
                stale.append(d)
            else:
                fresh.append(d)
        return fresh, stale, duplicate


def _same(d: Delivery, mark: tuple[int, str]) -> bool:
    """Already delivered: same instant, and the same evaluation (or one unrecorded)."""
    return d.evaluated_at_us == mark[0] and mark[1] in ("", d.event.evaluation.evaluation_id)
