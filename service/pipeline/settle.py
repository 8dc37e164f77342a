"""Turns outcomes into records for the outbox: a terminal status (and its
watermark), a retry that spends an attempt, or a deferral that does not.

A delivery is settled once what it produced is acknowledged by the broker: only
then does its Job count down, so only then may its offset be committed. Each
delivery settles at most once (`Delivery.claim`): a second settle of the same
delivery, on whatever path, is ignored, so a Job is never counted down twice.
One delivery whose records cannot be built fails alone (logged and counted);
the others of its batch go on.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from service.destinations.base import Outcome
from service.errors import PermanentError, clamp_wait
from service.metrics import Metrics
from service.models import DeliveryState, ErrorInfo, rfc3339
from service.pipeline import records
from service.pipeline.outbox import OutgoingQueue
from service.pipeline.records import Outgoing
from service.pipeline.status import status_record
from service.pipeline.tiers import (
    FIRST_RETRY_S,
    TierRecord,
    backoff_s,
    due_at,
    tier_for,
    tier_topics,
)
from service.pipeline.watermarks import Watermarks
from service.pipeline.work import Delivery, Job
from service.settings import Settings

log = logging.getLogger(__name__)
BAD_RESPONSE_ATTEMPTS = 3  # an unreadable answer is retried a few times, then fails
INTERNAL = PermanentError("the service could not process this delivery", code="internal_error")


class Settler:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        outbox: OutgoingQueue,
        watermarks: Watermarks,
        on_outcome: Callable[[Delivery, Outcome, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.outbox = outbox
        self.watermarks = watermarks
        self.tiers = tier_topics(settings.topic_retry)
        self.on_outcome = on_outcome  # the status endpoint's last outcomes

    async def settle(self, pairs: Sequence[tuple[Delivery, Outcome]]) -> None:
        """Statuses, watermarks and retries (each spends an attempt) for these
        outcomes; waits while the outbox is full. Already settled ones are skipped."""
        pairs = [(d, o) for d, o in pairs if d.claim()]
        if not pairs:
            return
        out: list[Outgoing] = []
        now = datetime.now(UTC)
        now_text = rfc3339(now)
        counts: Counter[tuple[str, DeliveryState, str | None]] = Counter()
        latencies: dict[str, list[float]] = {}
        for delivery, outcome in pairs:
            try:
                outcome, latency_s = self._one(delivery, outcome, out, now, now_text)
            except Exception:  # never lose the batch's other statuses to one bad record
                log.exception("cannot build the status of event %s", delivery.event.event_id)
                self.metrics.internal_errors.labels("settle").inc()
                continue
            if outcome.state.terminal:
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
        await self.outbox.put(out, _counting_down([d.job for d, _ in pairs]))

    def _one(
        self, d: Delivery, outcome: Outcome, out: list[Outgoing], now: datetime, now_text: str
    ) -> tuple[Outcome, float]:
        """One delivery's records, appended to `out` only once all are built;
        the final outcome and, when terminal, its latency in seconds."""
        mine: list[Outgoing] = []
        latency_s = 0.0
        if outcome.state is DeliveryState.RETRYING:
            outcome = self._retry(d, outcome, mine, now, now_text)
        if outcome.state.terminal:
            latency_s = self._terminal(d, outcome, mine, now, now_text)
        if outcome.state is not DeliveryState.DELIVERED:
            self._attempted(d, mine)
        out.extend(mine)
        return outcome, latency_s

    async def defer(
        self, pairs: Sequence[tuple[Delivery, float]], why: ErrorInfo | None = None
    ) -> None:
        """Park deliveries in a delay tier until `due` (epoch s), attempts untouched.
        `why` (the answer that put the destination on hold) also goes out as a
        `retrying` progress status; plain overflow of a lane's window does not."""
        out: list[Outgoing] = []
        now = datetime.now(UTC)
        now_text = rfc3339(now)
        waiting: list[Delivery] = []
        expired: list[Delivery] = []
        broken: list[Delivery] = []
        for delivery, due in pairs:
            if delivery.settled:
                continue
            if (now - delivery.first_attempt_at).total_seconds() >= self.settings.retry_deadline_s:
                expired.append(delivery)
                continue
            try:
                wait_s = clamp_wait(due - now.timestamp())
                record = TierRecord(
                    delivery.destination,
                    delivery.attempt,
                    due_at(now, wait_s),
                    delivery.first_attempt_at,
                    None,
                    delivery.raw,
                )
                mine = [self._delayed(delivery, record, wait_s)]
                self._attempted(delivery, mine)
            except Exception:
                log.exception("cannot defer event %s", delivery.event.event_id)
                self.metrics.internal_errors.labels("defer").inc()
                broken.append(delivery)
                continue
            delivery.claim()
            waiting.append(delivery)
            out.extend(mine)
            self.metrics.deferred.labels(delivery.destination).inc()
            if why is not None:
                outcome = Outcome(DeliveryState.RETRYING, error=why)
                key, progress, _ = status_record(delivery, outcome, now, now_text)
                out.append(
                    records.status(
                        self.settings.topic_status, key, progress, delivery.job.tp.partition
                    )
                )
        if expired:  # _retry turns these into `failed`
            error = ErrorInfo(
                code="deadline_exceeded",
                message="still waiting at RETRY_DEADLINE_S",
                retryable=True,
            )
            await self.settle([(d, Outcome(DeliveryState.RETRYING, error=error)) for d in expired])
        if broken:
            await self.settle([(d, Outcome.from_error(INTERNAL)) for d in broken])
        await self.outbox.put(out, _counting_down([d.job for d in waiting]))

    def _delayed(self, d: Delivery, record: TierRecord, wait_s: float) -> Outgoing:
        key = f"{d.event.org_id}:{d.event.lead.lead_id}".encode()
        topic = self.tiers[tier_for(wait_s)]
        return Outgoing(topic, key, d.raw, d.job.tp.partition, record.headers())

    def _attempted(self, d: Delivery, out: list[Outgoing]) -> None:
        """A write carrying `d` went out and did not deliver it: the CRM may hold it
        in part, so its attempt mark goes to the changelog too (it outlives us)."""
        if d.sent and self.watermarks.attempt(d):
            out.append(self._mark(d, written=False))

    def _mark(self, d: Delivery, *, written: bool) -> Outgoing:
        """`d`'s watermark changelog record: written, or only attempted."""
        return records.watermark(
            self.settings.topic_watermarks,
            d.lead_key,
            d.evaluated_at_text,
            d.event.evaluation.evaluation_id,
            d.job.tp.partition,
            written,
        )

    def _retry(
        self, d: Delivery, outcome: Outcome, out: list[Outgoing], now: datetime, now_text: str
    ) -> Outcome:
        error = outcome.error or ErrorInfo(
            code="transient_error", message="retryable", retryable=True
        )
        age = (now - d.first_attempt_at).total_seconds()
        cap = BAD_RESPONSE_ATTEMPTS if error.code == "bad_response" else self.settings.max_attempts
        s = self.settings
        if d.attempt >= min(cap, s.max_attempts) or age >= s.retry_deadline_s:
            why = f"gave up after {d.attempt} attempts over {age:.0f}s: {error.message}"
            return Outcome(DeliveryState.FAILED, error=error.model_copy(update={"message": why}))
        if outcome.outage:  # back with its destination: at the circuit's next probe
            delay = max(outcome.retry_after or 0.0, FIRST_RETRY_S) * random.uniform(1.0, 1.25)
        else:
            delay = backoff_s(
                d.attempt, s.retry_backoff_base_s, s.retry_backoff_max_s, outcome.retry_after
            )
        when = due_at(now, delay)
        record = TierRecord(d.destination, d.attempt + 1, when, d.first_attempt_at, error, d.raw)
        out.append(self._delayed(d, record, clamp_wait(delay)))
        self.metrics.retries.labels(d.destination).inc()
        key, progress, _ = status_record(d, outcome, now, now_text)  # progress only
        out.append(records.status(s.topic_status, key, progress, d.job.tp.partition))
        return outcome

    def _terminal(
        self, d: Delivery, outcome: Outcome, out: list[Outgoing], now: datetime, now_text: str
    ) -> float:
        """Queue the status (and the watermark); returns the latency in seconds."""
        key, value, latency_s = status_record(d, outcome, now, now_text)
        source = d.job.tp.partition
        out.append(records.status(self.settings.topic_status, key, value, source))
        if outcome.state is DeliveryState.FAILED and outcome.error is not None:
            log.warning(
                "delivery failed: event %s to %s, %s after %d attempt(s)",
                d.event.event_id,
                d.destination,
                outcome.error.code,
                d.attempt,
            )
        # A duplicate found in a store that outlived a crash may be missing from the
        # changelog (its record never reached Kafka): write it again, it compacts.
        if (
            outcome.state is DeliveryState.DELIVERED and self.watermarks.advance(d)
        ) or outcome.reason == "duplicate":
            out.append(self._mark(d, written=True))
        return latency_s


def _counting_down(jobs: list[Job]) -> Callable[[], None]:
    """Holds the jobs only: the events can be freed while their records wait for acks."""

    def done() -> None:
        for job in jobs:
            job.delivery_settled()

    return done
