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
from service.pipeline.lanes import Lanes
from service.pipeline.offsets import OffsetTracker
from service.pipeline.outbox import Outbox
from service.pipeline.records import Outgoing
from service.pipeline.settle import Settler
from service.pipeline.tiers import EARLY_OK_S, TierGate, TierRecord, tier_for
from service.pipeline.work import Delivery, Job
from service.settings import Settings

log = logging.getLogger(__name__)
INTERNAL = PermanentError("the service could not route this delivery", code="internal_error")


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

    async def on_records(self, tp: TopicPartition, batch: list[ConsumerRecord]) -> None:
        """One partition's share of a fetch, in offset order. Whatever one record
        does, it is contained here: the partition moves on."""
        if self.gate.is_tier(tp.topic):
            for record in batch:
                job = self._open(tp, record, 1)
                try:
                    await self._delayed_record(record, job)
                except Exception as exc:
                    await self._contain(record, job, "invalid_retry_record", exc, "deserialize")
            return
        self.metrics.events_consumed.inc(len(batch))
        now = datetime.now(UTC)  # first_attempt_at: once per fetch, not per event
        deferred: list[tuple[Delivery, float]] = []
        for record in batch:
            try:
                event = decode_event(record.value, self.settings.max_event_bytes)
            except InvalidEvent as exc:
                await self._dead_letter(record, self._open(tp, record, 1), exc)
                continue
            except Exception as exc:  # a decoder bug must not stop the partition
                job = self._open(tp, record, 1)
                await self._contain(record, job, "unprocessable_event", exc, "deserialize")
                continue
            configs = self.store.active(event.org_id)
            job = self._open(tp, record, max(1, len(configs)))
            if not configs:  # no active destination: nothing to deliver, no status
                job.delivery_settled()
                continue
            try:
                deliveries = [
                    Delivery(event, record.value, config, job, 1, now) for config in configs
                ]
            except Exception as exc:  # a value validation let through: the DLQ says which
                await self._contain(record, job, "unprocessable_event", exc, "validate")
                continue
            for delivery in deliveries:
                try:
                    config = delivery.config
                    if (
                        config.integration.status == "connected"
                        and config.destination in self.lanes.destinations
                    ):
                        due = self.lanes.offer(delivery)  # the hot path: nothing to await
                        if due is not None:
                            deferred.append((delivery, due))
                    else:
                        await self._start(delivery)
                except Exception:
                    await self._failed(delivery)
        if deferred:
            await self.settler.defer(deferred)

    def _open(self, tp: TopicPartition, record: ConsumerRecord, deliveries: int) -> Job:
        size = len(record.value) if record.value is not None else 0
        return Job(tp, record.offset, deliveries, self.offsets.add(tp, record.offset, size))

    async def _contain(
        self, record: ConsumerRecord, job: Job, code: str, exc: Exception, stage: str
    ) -> None:
        """A record whose processing raised: to the DLQ with what went wrong, once."""
        log.error(
            "cannot process %s[%d]@%d: %r", record.topic, record.partition, record.offset, exc
        )
        self.metrics.internal_errors.labels("route").inc()
        job.remaining = 1  # none of its deliveries were started: the DLQ copy settles it
        await self._dead_letter(record, job, InvalidEvent(code, repr(exc)[:500], stage))

    async def _failed(self, delivery: Delivery) -> None:
        """A delivery whose routing raised fails alone, with a clear code."""
        log.exception("cannot route event %s", delivery.event.event_id)
        self.metrics.internal_errors.labels("route").inc()
        await self.settler.settle([(delivery, Outcome.from_error(INTERNAL))])

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

    async def _dead_letter(self, record: ConsumerRecord, job: Job, exc: InvalidEvent) -> None:
        records.count_dead_letter(self.metrics, record, exc)
        await self.outbox.put(
            [records.dead_letter(self.settings.topic_dlq, record, exc)], job.delivery_settled
        )

    async def _delayed_record(self, record: ConsumerRecord, job: Job) -> None:
        try:
            delayed = TierRecord.read(record.value, record.headers)
            event = decode_event(
                delayed.event, max(self.settings.max_event_bytes, len(delayed.event))
            )
        except (InvalidEvent, ValueError, KeyError, TypeError, OverflowError) as exc:
            invalid = exc if isinstance(exc, InvalidEvent) else None
            await self._dead_letter(
                record,
                job,
                invalid or InvalidEvent("invalid_retry_record", str(exc), "deserialize"),
            )
            return
        wait = (delayed.not_before - datetime.now(UTC)).total_seconds()
        if wait > EARLY_OK_S:  # not due yet: on to the tier that fits what is left
            topic = self.gate.topics[tier_for(wait)]
            forward = Outgoing(topic, record.key, record.value, job.tp.partition, record.headers)
            await self.outbox.put([forward], job.delivery_settled)
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
