"""A bounded cache of record ids: (org, destination, object, match value) -> id.

Re-evaluated leads would otherwise be looked up again on every evaluation. The
destinations learn ids from lookups, creates and `crm_ids`, treat a cached id
like a `crm_ids` one (written directly, no lookup), and `drop` it when the CRM
says the record is gone (deleted, merged, converted): the same delivery then
falls back to matching by field. Least recently used entries go first.
"""

from __future__ import annotations

from collections import OrderedDict

from service.metrics import Metrics

DEFAULT_MAX_ENTRIES = 100_000  # about 20 MB at ~200 bytes an entry
CacheKey = tuple[str, str, str, str]  # org, destination, object, case-folded match value


def cache_key(org: str, destination: str, obj: str, value: str, *, fold: bool = True) -> CacheKey:
    """`fold=False` where the CRM matches case-sensitively (Airtable formulas)."""
    return (org, destination, obj, value.casefold() if fold else value)


class RecordCache:
    def __init__(
        self, destination: str, metrics: Metrics, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        if max_entries < 0:
            raise ValueError("record cache size must be >= 0")
        self.max_entries = max_entries
        self._ids: OrderedDict[CacheKey, str] = OrderedDict()
        # (org, destination, object, id) -> the keys pointing at it, so a gone record
        # is forgotten without walking the whole cache on the event loop.
        self._by_id: dict[CacheKey, set[CacheKey]] = {}
        self._hits = metrics.record_cache.labels(destination, "hit")
        self._misses = metrics.record_cache.labels(destination, "miss")
        self._dropped = metrics.record_cache.labels(destination, "dropped")

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, key: CacheKey) -> str | None:
        rid = self._ids.get(key)
        if rid is None:
            self._misses.inc()
            return None
        self._ids.move_to_end(key)
        self._hits.inc()
        return rid

    def put(self, key: CacheKey, rid: str) -> None:
        if self.max_entries == 0:
            return
        self._ids[key] = rid
        self._ids.move_to_end(key)
        while len(self._ids) > self.max_entries:
            self._ids.popitem(last=False)

    def drop(self, key: CacheKey) -> None:
        if self._ids.pop(key, None) is not None:
            self._dropped.inc()

    def drop_id(self, org: str, destination: str, obj: str, rid: str) -> None:
        """Forget every value that points at a record that is gone."""
        for key in [
            k for k, v in self._ids.items() if v == rid and k[:3] == (org, destination, obj)
        ]:
            self.drop(key)
