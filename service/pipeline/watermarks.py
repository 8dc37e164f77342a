"""No stale overwrite and no duplicate write (§6), per (org, destination, lead).

The newest evaluation of a lead that reached the CRM is kept in the partition's
state store (state.py): its `evaluated_at`, its `evaluation_id`, and whether it
was written (delivered) or only attempted. A write whose answer is an error or
is lost may still have been applied, in part (Airtable writes targets one after another; a
timeout after the CRM saved). So:

- older than the mark: stale, whether the mark was written or attempted;
- the same evaluation as a written mark: a duplicate (a redelivery), not written;
- the same evaluation as an attempted mark: fresh (its retry must go through).

Within a batch, the newest evaluation of a lead wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.pipeline.state import Mark, StateStores
from service.pipeline.work import Delivery


class Watermarks:
    def __init__(self, stores: StateStores) -> None:
        self.stores = stores

    def attempt(self, d: Delivery) -> bool:
        """A write carrying `d` went out and did not deliver it: older evaluations are
        stale from here on. True when this changed the mark (its changelog record is
        due). Kept only on failure: a lane writes one batch at a time and settles it
        before the next, and a crash in between redelivers both the write and
        whatever came after it, in order."""
        held = self.stores.get(d.job.tp.partition, d.lead_key)
        if held is not None and held[0] >= d.evaluated_at_us:
            return False
        self._put(d, written=False)
        return True

    def advance(self, d: Delivery) -> bool:
        """Record a delivered evaluation; True when this changed the mark."""
        held = self.stores.get(d.job.tp.partition, d.lead_key)
        if held is not None and (
            held[0] > d.evaluated_at_us or (held[0] == d.evaluated_at_us and held[2])
        ):
            return False
        self._put(d, written=True)
        return True

    def _put(self, d: Delivery, *, written: bool) -> None:
        mark = (d.evaluated_at_us, d.event.evaluation.evaluation_id, written)
        self.stores.put(d.job.tp.partition, d.lead_key, mark)

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


def _same(d: Delivery, mark: Mark) -> bool:
    """Already written: same instant, and the same evaluation (or one unrecorded)."""
    return (
        mark[2]
        and d.evaluated_at_us == mark[0]
        and mark[1] in ("", d.event.evaluation.evaluation_id)
    )
