"""Turns outcomes into Kafka records: a terminal status, or a retry record.

A delivery is settled (its Job may count it) only after what it produced is
acknowledged by the broker. If the broker cannot take it, the service marks
itself unhealthy and leaves the offset uncommitted, so a restart redelivers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from service.destinations.base import Outcome
from service.metrics import Metrics
from service.models import DeliveryState, DeliveryStatus, ErrorInfo, rfc3339
from service.pipeline.publisher import Publisher
from service.pipeline.retry import RetryRecord, backoff_s, due_at
from service.pipeline.watermarks import Watermarks
from service.pipeline.work import Delivery
from service.settings import Settings

log = logging.getLogger(__name__)


class Settler:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        publisher: Publisher,
        watermarks: Watermarks,
        on_fatal: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.publisher = publisher
        self.watermarks = watermarks
        self.on_fatal = on_fatal
        self._waiting: set[asyncio.Task[None]] = set()

    async def settle(self, pairs: Sequence[tuple[Delivery, Outcome]], *, spend_attempt: bool = True) -> None:
        """Enqueue every record; settle the deliveries once the broker acked them all."""
        futures: list[asyncio.Future[object]] = []
        for delivery, outcome in pairs:
            if outcome.state is DeliveryState.RETRYING:
                outcome = await self._retry(delivery, outcome, futures, spend_attempt)
            if outcome.state.terminal:
                await self._terminal(delivery, outcome, futures)
        task = asyncio.create_task(self._settle_when_acked(futures, [d for d, _ in pairs]))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def drain(self) -> None:
        while self._waiting:
            await asyncio.gather(*list(self._waiting), return_exceptions=True)

    async def _settle_when_acked(
        self, futures: list[asyncio.Future[object]], deliveries: list[Delivery]
    ) -> None:
        try:
            await asyncio.gather(*futures)
        except Exception as exc:
            log.error("Kafka did not acknowledge delivery records: %r; offsets stay uncommitted", exc)
            self.on_fatal(f"producer failed: {type(exc).__name__}")
            return
        for delivery in deliveries:
            delivery.job.settle()

    async def _retry(
        self, d: Delivery, outcome: Outcome, futures: list[asyncio.Future[object]], spend: bool
    ) -> Outcome:
        now = datetime.now(UTC)
        error = outcome.error or ErrorInfo(code="transient_error", message="retryable", retryable=True)
        age = (now - d.first_attempt_at).total_seconds()
        if (spend and d.attempt >= self.settings.max_attempts) or age >= self.settings.retry_deadline_s:
            why = f"gave up after {d.attempt} attempts over {age:.0f}s: {error.message}"
            return Outcome(DeliveryState.FAILED, error=error.model_copy(update={"message": why}))
        delay = backoff_s(
            d.attempt, self.settings.retry_backoff_base_s, self.settings.retry_backoff_max_s,
            outcome.retry_after,
        )
        record = RetryRecord(
            destination=d.destination,
            attempt=d.attempt + 1 if spend else d.attempt,
            not_before=due_at(now, delay),
            first_attempt_at=d.first_attempt_at,
            last_error=error,
            event=d.raw,
        )
        key = f"{d.event.org_id}:{d.event.lead.lead_id}".encode()
        futures.append(await self.publisher.retry(key, record.to_json()))
        self.metrics.retries.labels(d.destination).inc()
        # Progress only: consumers may show it; the terminal status comes later.
        await self.publisher.status(self._status(d, outcome, now))
        return outcome

    async def _terminal(self, d: Delivery, outcome: Outcome, futures: list[asyncio.Future[object]]) -> None:
        now = datetime.now(UTC)
        status = self._status(d, outcome, now)
        futures.append(await self.publisher.status(status))
        destination = d.destination
        self.metrics.deliveries.labels(destination, outcome.state.value).inc()
        if outcome.reason:
            self.metrics.skipped.labels(destination, outcome.reason).inc()
        self.metrics.delivery_latency.labels(destination).observe(status.latency_ms / 1000)
        if outcome.state is DeliveryState.DELIVERED:
            evaluated_at = d.event.evaluation.evaluated_at
            if self.watermarks.advance(d.lead_key, evaluated_at):
                futures.append(await self.publisher.watermark(d.lead_key, rfc3339(evaluated_at)))

    def _status(self, d: Delivery, outcome: Outcome, now: datetime) -> DeliveryStatus:
        event = d.event
        return DeliveryStatus(
            event_id=event.event_id,
            org_id=event.org_id,
            lead_id=event.lead.lead_id,
            evaluation_id=event.evaluation.evaluation_id,
            destination=d.destination,
            status=outcome.state,
            reason=outcome.reason,
            records=list(outcome.records),
            error=outcome.error,
            attempts=d.attempt,
            evaluated_at=rfc3339(event.evaluation.evaluated_at),
            completed_at=rfc3339(now),
            latency_ms=max(0, int((now - event.occurred_at).total_seconds() * 1000)),
        )
