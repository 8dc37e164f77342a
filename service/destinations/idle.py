"""A map whose entries go when unused for a while, or when there are too many.

Per-account state (rate windows, daily budgets, tokens, secrets read from files)
would otherwise stay for every account ever seen: orgs leave, credentials files
are replaced. An entry unused for `idle_s` is dropped on the next insert, and
the least recently used go first once `max_entries` is reached. A dropped entry
is only state the service can learn again (a grant, a file read, a header).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from time import monotonic
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdleMap(Generic[K, V]):
    def __init__(
        self,
        *,
        idle_s: float,
        max_entries: int,
        on_evict: Callable[[K, V], None] | None = None,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        if idle_s <= 0 or max_entries < 1:
            raise ValueError("idle_s and max_entries must be positive")
        self.idle_s, self.max_entries = idle_s, max_entries
        self._on_evict, self._clock = on_evict, clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()  # oldest use first

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def values(self) -> Iterator[V]:
        return (value for _, value in self._entries.values())

    def get(self, key: K) -> V | None:
        """The entry, marked as used now; None when absent."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries[key] = (self._clock(), entry[1])
        self._entries.move_to_end(key)
        return entry[1]

    def peek(self, key: K) -> V | None:
        """The entry, without counting this as a use."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V) -> None:
        now = self._clock()
        self._entries[key] = (now, value)
        self._entries.move_to_end(key)
        self._evict(now)

    def setdefault(self, key: K, factory: Callable[[], V]) -> V:
        value = self.get(key)
        if value is None:
            value = factory()
            self.put(key, value)
        return value

    def pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        return None if entry is None else entry[1]

    def _evict(self, now: float) -> None:
        while self._entries:
            key, (used, value) = next(iter(self._entries.items()))
            if len(self._entries) <= self.max_entries and now - used < self.idle_s:
                return
            del self._entries[key]
            if self._on_evict is not None:
                self._on_evict(key, value)
