"""The sandbox's rate limits: a rolling window (190 per 10 s by default), search
per second, and a daily quota, answered with HubSpot's 429 body and headers.

429 body per HubSpot's usage guidelines:
    {"status": "error", "message": "You have reached your daily limit.",
     "errorType": "RATE_LIMIT", "correlationId": ..., "policyName": "DAILY",
     "requestId": ...}
Search counts against both the search limit and the rolling window.
"""

from __future__ import annotations

import uuid
from collections import Counter, deque
from math import ceil
from time import monotonic
from typing import Any

POLICY_MESSAGES = {
    "DAILY": "You have reached your daily limit.",
    "SECONDLY": "You have reached your secondly limit.",
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
}


class Budget:
    def __init__(
        self, max_requests: int, window_s: float, search_per_s: int, daily_limit: int
    ) -> None:
        self.max_requests, self.window_s = max_requests, window_s
        self.search_per_s, self.daily_limit = search_per_s, daily_limit
        self.daily_used = 0
        self.rejected: Counter[str] = Counter()  # policy -> 429s answered
        self._window: deque[float] = deque()
        self._search: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._window and self._window[0] <= now - self.window_s:
            self._window.popleft()
        while self._search and self._search[0] <= now - 1.0:
            self._search.popleft()

    def admit(self, search: bool) -> str | None:
        """None when the request may go ahead, else the policy it breaks."""
        now = monotonic()
        self._prune(now)
        policy = None
        if self.daily_used >= self.daily_limit:
            policy = "DAILY"
        elif search and len(self._search) >= self.search_per_s:
            policy = "SECONDLY"
        elif len(self._window) >= self.max_requests:
            policy = "TEN_SECONDLY_ROLLING"
        if policy:
            self.rejected[policy] += 1
            return policy
        self._window.append(now)
        if search:
            self._search.append(now)
        self.daily_used += 1
        return None

    def headers(self) -> dict[str, str]:
        self._prune(monotonic())
        secondly = ceil(self.max_requests / self.window_s)
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self.daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window_s * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.max_requests),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.max_requests - len(self._window))),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(
                max(0, secondly - sum(1 for t in self._window if t > monotonic() - 1))
            ),
        }


def limit_body(policy: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": POLICY_MESSAGES[policy],
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }
