"""Turns outcomes into Kafka records: a terminal status, or a retry record.

A delivery is settled (its Job may count it) only after what it produced is
acknowledged by the broker. If the broker cannot take it, the service marks
itself unhealthy and leaves the offset uncommitted, so a restart redelivers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from service.destinations.base import Outcome
from service.metrics import Metrics
from service.models import DeliveryState, ErrorInfo, rfc3339
from service.pipeline.publisher import Outgoing, Publisher
from service.pipeline.retry import RetryRecord, backoff_s, due_at
from service.pipeline.status import status_record
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
        on_outcome: Callable[[Delivery, Outcome, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.publisher = publisher
        self.watermarks = watermarks
        self.on_fatal = on_fatal
        self.on_outcome = on_outcome  # the status endpoint's last outcomes
        self._waiting: set[asyncio.Task[None]] = set()

    async def settle(
        self, pairs: Sequence[tuple[Delivery, Outcome]], *, spend_attempt: bool = True
    ) -> None:
        """Enqueue every record; settle the deliveries once the broker acked them all."""
        outbox: list[Outgoing] = []
        now = datetime.now(UTC)
        now_text = rfc3339(now)
        counts: Counter[tuple[str, DeliveryState, str | None]] = Counter()
        latencies: dict[str, list[float]] = {}
        for delivery, outcome in pairs:
            if outcome.state is DeliveryState.RETRYING:
                outcome = self._retry(delivery, outcome, outbox, spend_attempt, now, now_text)
            if outcome.state.terminal:
                latency_s = self._terminal(delivery, outcome, outbox, now, now_text)
                latencies.setdefault(delivery.destination, []).append(latency_s)
                counts[(delivery.destination, outcome.state, outcome.reason)] += 1
            if self.on_outcome is not None:
                self.on_outcome(delivery, outcome, now_text)
        for destination, values in latencies.items():
            self.metrics.delivery_latency.observe_many(destination, values)
        for (destination, state, reason), count in counts.items():
            self.metrics.deliveries.labels(destination, state.value).inc(count)
            if reason:
                self.metrics.skipped.labels(destination, reason).inc(count)
        futures = await self.publisher.send_many(outbox)
        deliveries = [d for d, _ in pairs]
        task = asyncio.create_task(self._settle_when_acked(futures, deliveries))
        self._waiting.add(task)  # held until done, so it is never garbage-collected
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
            log.error(
                "Kafka did not acknowledge delivery records: %r; offsets stay uncommitted", exc
            )
            self.on_fatal(f"producer failed: {type(exc).__name__}")
            return
        for delivery in deliveries:
            delivery.job.settle()

    def _retry(
        self,
        d: Delivery,
        outcome: Outcome,
        outbox: list[Outgoing],
        spend: bool,
        now: datetime,
        now_text: str,
    ) -> Outcome:
        error = outcome.error or ErrorInfo(
            code="transient_error", message="retryable", retryable=True
        )
        age = (now - d.first_attempt_at).total_seconds()
        if (
            spend and d.attempt >= self.settings.max_attempts
        ) or age >= self.settings.retry_deadline_s:
            why = f"gave up after {d.attempt} attempts over {age:.0f}s: {error.message}"
            return Outcome(DeliveryState.FAILED, error=error.model_copy(update={"message": why}))
        delay = backoff_s(
            d.attempt,
            self.settings.retry_backoff_base_s,
            self.settings.retry_backoff_max_s,
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
        key, progress, _ = status_record(d, outcome, now, now_text)
        source = d.job.tp.partition
        outbox.append(self.publisher.retry(key, record.to_json(), source))
        self.metrics.retries.labels(d.destination).inc()
        # Progress only: consumers may show it; the terminal status comes later.
        outbox.append(self.publisher.status(key, progress, source))
        return outcome

    def _terminal(
        self, d: Delivery, outcome: Outcome, outbox: list[Outgoing], now: datetime, now_text: str
    ) -> float:
        """Enqueue the status (and the watermark); returns the latency in seconds."""
        key, value, latency_s = status_record(d, outcome, now, now_text)
        source = d.job.tp.partition
        outbox.append(self.publisher.status(key, value, source))
        delivered = outcome.state is DeliveryState.DELIVERED
        if delivered and self.watermarks.advance(d.lead_key, d.evaluated_at_us):
            outbox.append(self.publisher.watermark(d.lead_key, d.evaluated_at_text, key, source))
        return latency_s
