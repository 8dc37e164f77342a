"""When a work partition changes hands: the old owner says when it let go.

An instance that hands a work partition back (a rebalance or a stop) has let its
writes for it finish or be cancelled (rebalance.py). It then writes a `released`
record, with the time, to the partition's watermarks changelog. The next owner
restores the changelog before it processes anything, so it finds that time and
holds the partition's tenants' rate windows until the previous owner's last
requests have aged out of them (ratelimit.Handoffs): a tenant never sees both
owners' requests within one window. A killed owner writes nothing; its partitions
move only after its session timed out (10 s, HubSpot's window, by default).
"""

from __future__ import annotations

from datetime import UTC, datetime

from service.models import json_bytes, rfc3339
from service.pipeline.records import Outgoing
from service.pipeline.state import StateStores

RELEASED_KEY = "\x00released"  # no watermark key starts with NUL


def released_records(changelog: str, partitions: set[int]) -> list[Outgoing]:
    """One `released` record per partition, stamped now (a changelog value)."""
    now = rfc3339(datetime.now(UTC))
    value = json_bytes({"evaluated_at": now, "evaluation_id": "released"})
    key = RELEASED_KEY.encode()
    return [Outgoing(changelog, key, value, p, partition=p) for p in sorted(partitions)]


def released_at(stores: StateStores, partition: int) -> float | None:
    """When the partition's previous owner let it go (epoch s), from its restored store.
    Read from the store itself: the LRU in front is keyed without the partition."""
    store = stores.parts.get(partition)
    mark = store.get(RELEASED_KEY) if store is not None else None
    return mark[0] / 1_000_000 if mark is not None else None
