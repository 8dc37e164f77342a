"""The HubSpot destination's knobs, from `ctx.options["hubspot"]` (all optional).

The defaults are production's (a private app's budgets); tests and the benchmark
tune them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.destinations.base import options_from

NAME = "hubspot"


@dataclass(frozen=True)
class HubSpotOptions:
    max_requests: int = 190
    window_s: float = 10.0
    search_requests: int = 4
    search_window_s: float = 1.0
    search_spacing_s: float | None = None  # between search starts; None: window / requests
    inputs_per_request: int = 100  # HubSpot's batch cap
    max_batch_size: int = 1000  # items per write(): 10 full upserts
    search_page_size: int = 200  # HubSpot's search page cap
    daily_retry_s: float | None = None  # None: probe at the next full UTC hour
    created_cache_s: float = 300.0  # unused since the record cache (kept: option maps load)
    cache_size: int = 100_000  # record-id cache entries (service/destinations/cache.py)

    def __post_init__(self) -> None:
        if not 1 <= self.inputs_per_request <= 100:
            raise ValueError("inputs_per_request must be between 1 and 100")
        if self.search_spacing_s is not None and self.search_spacing_s < 0:
            raise ValueError("search_spacing_s must be >= 0")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> HubSpotOptions:
        return options_from(cls, raw, NAME)
