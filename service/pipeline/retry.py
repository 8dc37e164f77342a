"""Durable retries (§6): a delivery that must wait is written to the retry topic.

Once the retry record is acknowledged, the source offset may be committed: the
retry topic now owns the delivery, so it survives a restart. The record holds
the original event bytes unchanged (as a JSON fragment, not re-encoded).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from service.models import ErrorInfo, rfc3339


@dataclass(frozen=True)
class RetryRecord:
    destination: str
    attempt: int  # the attempt this record will make
    not_before: datetime
    first_attempt_at: datetime
    last_error: ErrorInfo | None
    event: bytes  # original EvaluationCompleted JSON

    def to_json(self) -> bytes:
        return orjson.dumps(
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
