"""The Airtable destination's knobs, from `ctx.options["airtable"]` (all optional).

The defaults are production's (Airtable's per-base limits); tests and the
benchmark tune them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.destinations.airtable.plan import DESTINATION
from service.destinations.base import options_from
from service.destinations.cache import DEFAULT_MAX_ENTRIES


@dataclass(frozen=True)
class AirtableOptions:
    requests_per_second: int = 5  # Airtable's per-base ceiling
    window_s: float = 1.0  # counted from each answer (service/ratelimit.py): no margin needed
    penalty_s: float = 30.0  # Airtable's lock-out after a 429, when no Retry-After says otherwise
    max_batch_size: int = 200  # 20 requests of 10 records
    client: str = "aiohttp"  # or "sdk": pyairtable in worker threads
    cache_size: int = DEFAULT_MAX_ENTRIES  # record-id cache entries

    def __post_init__(self) -> None:
        if self.requests_per_second < 1 or self.window_s <= 0 or self.max_batch_size < 1:
            raise ValueError("airtable options: rates, window and batch size must be positive")
        if self.client not in ("aiohttp", "sdk"):
            raise ValueError(f"airtable options: unknown client {self.client!r}")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> AirtableOptions:
        return options_from(cls, raw, DESTINATION)
