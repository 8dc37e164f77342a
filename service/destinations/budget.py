"""A daily API budget per CRM account: `max_daily_api_share` of the config (issue 14).

Customers share their daily API allocation with everything else they run. When
the org's config sets `max_daily_api_share`, this service spends at most that
share of the allocation the CRM reports (Salesforce `Sforce-Limit-Info:
api-usage=used/limit`, HubSpot `X-HubSpot-RateLimit-Daily`). Our own requests
are counted per account over a rolling 24 hours in hourly buckets (Salesforce's
allocation is a rolling 24 h; HubSpot's resets daily, which shows as
`X-HubSpot-RateLimit-Daily-Remaining` going up, and then our count restarts).

When the share is spent, `check` raises `QuotaExhausted` (code
`quota_budget_exhausted`): the pipeline parks the deliveries without spending
attempts until `retry_after`, as for a spent quota. Then one probe request may
go, so a reset the counters cannot see is learned from the CRM's answer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from time import monotonic

from service.destinations.idle import IdleMap
from service.errors import QuotaExhausted
from service.metrics import Metrics

WINDOW_S = 86_400.0
BUCKET_S = 3_600.0
CODE = "quota_budget_exhausted"
MAX_ACCOUNTS = 100_000


@dataclass
class _Account:
    share: float | None = None
    limit: int | None = None
    remaining: int | None = None
    buckets: deque[list[float]] = field(default_factory=deque)  # [start, requests]
    probe_at: float = 0.0  # monotonic: one request may go then, whatever the count says

    def used(self, now: float) -> int:
        while self.buckets and self.buckets[0][0] <= now - WINDOW_S:
            self.buckets.popleft()
        return int(sum(count for _, count in self.buckets))

    def wait(self, now: float, cap: float) -> float:
        """Seconds until enough of our requests age out of the window to go below `cap`."""
        used = self.used(now)
        for start, count in self.buckets:
            used -= int(count)
            if used < cap:
                return max(1.0, start + WINDOW_S - now)
        return BUCKET_S


class DailyBudget:
    def __init__(
        self, destination: str, metrics: Metrics, *, probe: Callable[[], float] | None = None
    ) -> None:
        self.destination = destination
        self.probe = probe  # seconds to the next probe; None: until our requests age out
        # Idle for a whole window, an account's count is empty anyway: forget it.
        self._accounts: IdleMap[str, _Account] = IdleMap(
            idle_s=WINDOW_S + BUCKET_S, max_entries=MAX_ACCOUNTS
        )
        self._exhausted = metrics.quota_budget_exhausted.labels(destination)

    def configure(self, key: str, share: float | None) -> None:
        """The org's current share (configs change); None lifts the budget."""
        self._accounts.setdefault(key, _Account).share = share

    def check(self, key: str) -> None:
        """Raise QuotaExhausted while the share is spent (counted once per refusal)."""
        account = self._accounts.get(key)
        if account is None or account.share is None or not account.limit:
            return
        now = monotonic()
        cap = account.share * account.limit
        if account.used(now) < cap:
            account.probe_at = 0.0
            return
        if account.probe_at and now >= account.probe_at:
            return  # the probe: its answer may show a reset (see `spend`)
        if account.probe_at <= now:  # a probe already planned is not pushed back
            account.probe_at = now + self._wait(account, now, cap)
        wait = account.probe_at - now
        self._exhausted.inc()
        raise QuotaExhausted(
            f"{self.destination}: this service's share of the daily API allocation "
            f"({account.share:.0%} of {account.limit}) is spent",
            retry_after=wait,
            code=CODE,
            http_status=None,
        )

    def _wait(self, account: _Account, now: float, cap: float) -> float:
        wait = account.wait(now, cap)
        return min(wait, self.probe()) if self.probe is not None else wait

    def spend(self, key: str, limit: int | None = None, remaining: int | None = None) -> None:
        """One request of ours, and what the CRM said about the allocation."""
        account = self._accounts.setdefault(key, _Account)
        now = monotonic()
        if remaining is not None:
            if account.remaining is not None and remaining > account.remaining:
                account.buckets.clear()  # a new day began: our count restarts
            account.remaining = remaining
        if limit:
            account.limit = limit
        if not account.buckets or account.buckets[-1][0] <= now - BUCKET_S:
            account.buckets.append([now, 0.0])
        account.buckets[-1][1] += 1
        if account.probe_at and now >= account.probe_at:  # that was the probe
            cap = (account.share or 0.0) * (account.limit or 0)
            spent = account.share is not None and account.used(now) >= cap
            account.probe_at = now + self._wait(account, now, cap) if spent else 0.0
