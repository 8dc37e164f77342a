"""Delayed work (§6): retries and deferrals, held durably in delay-tier topics.

A delivery that must wait (a transient failure, or a destination that is
behind, rate-limited, over quota or behind an open circuit) becomes a record in
a tier topic. Each tier has one delay, so its partitions are in due order: the
consumer holds a tier partition until its head is due (delays.py), and nothing
waiting is held in memory. A record whose own `not_before` is further out than
the tier's delay moves down to the next tier when it comes out.

The record holds the original event bytes unchanged (a JSON fragment).
`attempt` is the attempt it will make: a retry spends one, a deferral does not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from service.models import ErrorInfo, json_bytes, rfc3339

# Seconds; tier 0 is TOPIC_RETRY itself, the others are `{TOPIC_RETRY}.{label}`.
TIERS = ((1.0, ""), (5.0, "5s"), (25.0, "25s"), (120.0, "2m"), (600.0, "10m"), (3600.0, "1h"))
EARLY_OK_S = 0.05  # released this close to not_before counts as due


def tier_topics(retry_topic: str) -> list[str]:
    return [retry_topic if not label else f"{retry_topic}.{label}" for _, label in TIERS]


def tier_for(wait_s: float) -> int:
    """The longest tier that does not overshoot `wait_s` (the shortest for small waits)."""
    best = 0
    for index, (delay, _) in enumerate(TIERS):
        if delay <= wait_s:
            best = index
    return best


@dataclass(frozen=True, slots=True)
class RetryRecord:
    destination: str
    attempt: int  # the attempt this record will make
    not_before: datetime
    first_attempt_at: datetime
    last_error: ErrorInfo | None
    event: bytes  # original EvaluationCompleted JSON

    def to_json(self) -> bytes:
        return json_bytes(
            {
                "v": 1,
                "destination": self.destination,
                "attempt": self.attempt,
                "not_before": rfc3339(self.not_before),
                "first_attempt_at": rfc3339(self.first_attempt_at),
                "last_error": self.last_error.model_dump() if self.last_error else None,
                "event": orjson.Fragment(self.event),
            }
        )

    @classmethod
    def from_json(cls, value: bytes) -> RetryRecord:
        """Raises ValueError/KeyError/TypeError on a record this service did not write."""
        data = orjson.loads(value)
        error = data.get("last_error")
        return cls(
            destination=str(data["destination"]),
            attempt=int(data["attempt"]),
            not_before=datetime.fromisoformat(data["not_before"]),
            first_attempt_at=datetime.fromisoformat(data["first_attempt_at"]),
            last_error=ErrorInfo.model_validate(error) if error else None,
            event=orjson.dumps(data["event"]),
        )


def backoff_s(attempt: int, base_s: float, max_s: float, retry_after: float | None) -> float:
    """Exponential backoff with jitter after `attempt` failed; never sooner than Retry-After."""
    exp = min(max_s, base_s * 2 ** max(0, attempt - 1))
    delay: float = exp * random.uniform(0.8, 1.2)  # spread a burst of failures apart
    return max(delay, retry_after or 0.0)


def due_at(now: datetime, delay_s: float) -> datetime:
    return (now + timedelta(seconds=delay_s)).astimezone(UTC)
