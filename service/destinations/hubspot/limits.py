"""Per-token request budgets for HubSpot, and what its 429 answers mean.

Private apps get 190 requests per rolling 10 s (Pro/Enterprise) and the CRM
search endpoints 4 requests per second; a 429 whose `policyName` is DAILY means
the account's day is spent (it resets at midnight in the account's time zone).

Searches are also spaced evenly (one per 1/4 s). The window alone lets four go
back to back and then holds the fifth for most of a second; a lane writes one
batch at a time, so every event that arrived meanwhile waited out that stall
(bench/latency.py, 20 orgs at 5 events/s each: a search in every batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from time import monotonic, time
from typing import Any

from service.destinations.answers import text_of
from service.destinations.http import header_number, retry_after_seconds
from service.destinations.hubspot.options import HubSpotOptions
from service.errors import QuotaExhausted, RateLimited
from service.ratelimit import CompletionWindow, Handoffs
from service.redact import redact

# What HubSpot announces: 100-250 requests per 1 or 10 s. Anything far outside is
# not a limit we can follow (a 10^12 ms interval would stall the token for good).
MAX_ANNOUNCED = 100_000
MIN_INTERVAL_MS, MAX_INTERVAL_MS = 100, 60_000


class TokenLimits:
    """Everything one access token may spend: the 10 s window, search, the day."""

    def __init__(self, options: HubSpotOptions) -> None:
        self.options = options
        self.general = CompletionWindow(options.max_requests, options.window_s)
        self.search = CompletionWindow(options.search_requests, options.search_window_s)
        self.daily_until = 0.0  # monotonic; the account's daily quota is spent until then
        spacing = options.search_spacing_s
        self.search_spacing = (
            options.search_window_s / options.search_requests if spacing is None else spacing
        )
        self._next_search = 0.0  # monotonic: the earliest start of the next search

    def handoff(self, handoffs: Handoffs, org_id: str) -> None:
        """Hold both windows while the tenant's previous owner's requests count."""
        for window in (self.general, self.search):
            if (wait := handoffs.wait_s(org_id, window.window_s)) > 0:
                window.hold(wait)

    def check_daily(self) -> None:
        """Fail fast, without a request, while the day's quota is known to be spent."""
        left = self.daily_until - monotonic()
        if left > 0:
            raise QuotaExhausted("HubSpot daily API limit reached", retry_after=left)

    @asynccontextmanager
    async def slot(self, search: bool) -> AsyncIterator[None]:
        if search:  # search requests spend both budgets (conservative)
            async with self.search.slot():
                await self._spaced()
                async with self.general.slot():
                    yield
        else:
            async with self.general.slot():
                yield

    async def _spaced(self) -> None:
        """Wait for this search's turn: searches start at least `search_spacing` apart."""
        now = monotonic()
        start = max(now, self._next_search)
        self._next_search = start + self.search_spacing  # reserved before waiting (FIFO)
        if start > now:
            await asyncio.sleep(start - now)

    def observe(self, headers: Mapping[str, str]) -> float | None:
        """Adapt to the X-HubSpot-RateLimit-* headers; the daily usage ratio, if given.
        Values outside what HubSpot ever sends are ignored, never taken as a limit."""
        top = header_number(headers, "X-HubSpot-RateLimit-Max", limit=MAX_ANNOUNCED)
        interval = header_number(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        if top and interval and MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
            self.general.adapt(top, interval / 1000)
        daily = header_number(headers, "X-HubSpot-RateLimit-Daily")
        left = header_number(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        if daily and left is not None:
            if left <= 0:
                self.daily_until = monotonic() + daily_wait(self.options.daily_retry_s)
            return max(0.0, min(1.0, 1 - left / daily))
        return None

    def rate_limited(self, headers: Mapping[str, str], body: Any, search: bool) -> RateLimited:
        """The error for a 429, by its policy; a DAILY one blocks the token until reset."""
        body = body if isinstance(body, dict) else {}
        policy = text_of(body.get("policyName")).upper()[:50]
        message = redact(text_of(body.get("message")))[:300]
        if policy == "DAILY":
            wait = daily_wait(self.options.daily_retry_s)
            self.daily_until = monotonic() + wait
            return QuotaExhausted(f"HubSpot daily limit: {message}", retry_after=wait)
        interval = header_number(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        if search or policy == "SECONDLY":
            default = 1.0
        elif interval and MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
            default = interval / 1000  # TEN_SECONDLY_ROLLING: a whole interval clears it
        else:
            default = self.options.window_s
        return RateLimited(
            f"HubSpot rate limit ({policy or 'unknown policy'}): {message}",
            retry_after=retry_after_seconds(headers, default),
        )


def daily_wait(configured: float | None) -> float:
    """Seconds until the next probe. The reset is at the account's local midnight,
    which is a full UTC hour in almost every time zone, so probe then."""
    if configured is not None:
        return configured
    return 3600 - time() % 3600 + 1
