"""Consumed records -> deliveries: decode, dead-letter, join with configs, fan out.

Evaluations fan out to every active destination of the org. Delayed records
(retries and deferrals) come out of their tier here once due: they move down
to a shorter tier while their own time is further out, and are otherwise
delivered against the config in force now. A lane that cannot take a delivery
names the time it should come back, and it is deferred to then.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from service.config.store import ConfigStore
from service.destinations.base import Outcome
from service.errors import InvalidEvent, PermanentError
from service.metrics import Metrics
from service.models import DestinationConfig, EvaluationCompleted, Integration, UpdatedBy
from service.pipeline import records
from service.pipeline.decode import decode_event
from service.pipeline.delays import TierGate
from service.pipeline.lanes import Lanes
from service.pipeline.offsets import OffsetTracker
from service.pipeline.outbox import Outbox
from service.pipeline.records import Outgoing
from service.pipeline.retry import EARLY_OK_S, RetryRecord, tier_for
from service.pipeline.settle import Settler
from service.pipeline.work import Delivery, Job
from service.settings import Settings

log = logging.getLogger(__name__)


class Router:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        store: ConfigStore,
        lanes: Lanes,
        settler: Settler,
        outbox: Outbox,
        offsets: OffsetTracker,
        gate: TierGate,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.lanes = lanes
        self.settler = settler
        self.outbox = outbox
        self.offsets = offsets
        self.gate = gate
        self.open_jobs = 0
        self._on_job_done = self._job_done  # one bound method, not a fresh one per Job

    async def on_records(self, tp: TopicPartition, batch: list[ConsumerRecord]) -> None:
        """One partition's share of a fetch, in offset order."""
        if self.gate.is_tier(tp.topic):
            for record in batch:
                self._open(tp, record.offset)
                await self._delayed_record(tp, record)
            return
        self.metrics.events_consumed.inc(len(batch))
        now = datetime.now(UTC)  # first_attempt_at: once per fetch, not per event
        deferred: list[tuple[Delivery, float]] = []
        for record in batch:
            self._open(tp, record.offset)
            try:
                event = decode_event(record.value, self.settings.max_event_bytes)
            except InvalidEvent as exc:
                await self._dead_letter(tp, record, exc)
                continue
            configs = self.store.active(event.org_id)
            job = Job(tp, record.offset, max(1, len(configs)), self._on_job_done)
            if not configs:  # no active destination: nothing to deliver, no status
                job.count_down()
                continue
            for config in configs:
                delivery = Delivery(event, record.value, config, job, 1, now)
                if (
                    config.integration.status == "connected"
                    and config.destination in self.lanes.destinations
                ):
                    due = self.lanes.offer(delivery)  # the hot path: nothing to await
                    if due is not None:
                        deferred.append((delivery, due))
                else:
                    await self._start(delivery)
        if deferred:
            await self.settler.defer(deferred)

    def _open(self, tp: TopicPartition, offset: int) -> None:
        self.offsets.add(tp, offset)
        self.open_jobs += 1

    def _job_done(self, job: Job) -> None:
        self.open_jobs -= 1
        self.offsets.finish(job.tp, job.offset)

    async def _start(self, delivery: Delivery) -> None:
        config = delivery.config
        if config.integration.status != "connected":
            await self.settler.settle([(delivery, Outcome.skipped("integration_not_connected"))])
        elif config.destination not in self.lanes.destinations:
            error = PermanentError(
                f"{config.destination} is not enabled", code="destination_unavailable"
            )
            await self.settler.settle([(delivery, Outcome.from_error(error))])
        else:
            due = self.lanes.offer(delivery)
            if due is not None:
                await self.settler.defer([(delivery, due)])

    async def _dead_letter(
        self, tp: TopicPartition, record: ConsumerRecord, exc: InvalidEvent
    ) -> None:
        self.metrics.events_invalid.labels(exc.code).inc()
        self.metrics.dlq.labels(exc.stage).inc()
        log.warning(
            "invalid event at %s[%d]@%d to DLQ: %s (%s)",
            record.topic,
            record.partition,
            record.offset,
            exc.code,
            exc.message[:200],
        )
        job = Job(tp, record.offset, 1, self._on_job_done)
        await self.outbox.put(
            [records.dead_letter(self.settings.topic_dlq, record, exc)], job.count_down
        )

    async def _delayed_record(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        try:
            delayed = RetryRecord.from_json(record.value or b"")
            event = decode_event(
                delayed.event, max(self.settings.max_event_bytes, len(delayed.event))
            )
        except (InvalidEvent, ValueError, KeyError, TypeError) as exc:
            invalid = exc if isinstance(exc, InvalidEvent) else None
            await self._dead_letter(
                tp, record, invalid or InvalidEvent("invalid_retry_record", str(exc), "deserialize")
            )
            return
        job = Job(tp, record.offset, 1, self._on_job_done)
        wait = (delayed.not_before - datetime.now(UTC)).total_seconds()
        if wait > EARLY_OK_S:  # not due yet: on to the tier that fits what is left
            topic = self.gate.topics[tier_for(wait)]
            forward = Outgoing(topic, record.key, record.value, tp.partition)
            await self.outbox.put([forward], job.count_down)
            return
        config: DestinationConfig | None = self.store.get(event.org_id, delayed.destination)
        delivery = Delivery(
            event,
            delayed.event,
            config or _placeholder(event, delayed.destination),
            job,
            delayed.attempt,
            delayed.first_attempt_at,
        )
        if config is None or not config.send_evaluations:
            await self.settler.settle([(delivery, Outcome.skipped("destination_inactive"))])
            return
        await self._start(delivery)


def _placeholder(event: EvaluationCompleted, destination: str) -> DestinationConfig:
    """A stand-in config for a destination deleted while a retry waited (status only)."""
    return DestinationConfig.model_construct(
        schema_version=1,
        org_id=event.org_id,
        destination=destination,
        version=0,
        integration=Integration.model_construct(id="", status="deleted", credentials_ref=""),
        send_evaluations=False,
        updated_by=UpdatedBy.model_construct(user_id="", role=""),
    )
