"""Consumed records -> deliveries: decode, dead-letter, join with configs, fan out.

Evaluations fan out to every active destination of the org; retry records come
back here when their time is due, against the config in force then.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from service.config.store import ConfigStore
from service.destinations.base import Outcome
from service.errors import InvalidEvent, PermanentError
from service.metrics import Metrics
from service.models import DestinationConfig, EvaluationCompleted, Integration, UpdatedBy
from service.pipeline.decode import decode_event
from service.pipeline.lanes import Lanes
from service.pipeline.offsets import OffsetTracker
from service.pipeline.publisher import Publisher
from service.pipeline.retry import RetryRecord
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
        publisher: Publisher,
        offsets: OffsetTracker,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.lanes = lanes
        self.settler = settler
        self.publisher = publisher
        self.offsets = offsets
        self.open_jobs = 0
        self._timers: dict[Job, asyncio.TimerHandle] = {}
        self._on_job_done = self._job_done  # one bound method, not a fresh one per Job

    async def on_records(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        """One partition's share of a fetch, in offset order."""
        if tp.topic == self.settings.topic_retry:
            for record in records:
                self._open(tp, record.offset)
                await self._retry_record(tp, record)
            return
        self.metrics.events_consumed.inc(len(records))
        now = datetime.now(UTC)  # first_attempt_at: once per fetch, not per event
        for record in records:
            self._open(tp, record.offset)
            try:
                event = decode_event(record.value, self.settings.max_event_bytes)
            except InvalidEvent as exc:
                await self._dead_letter(tp, record, exc)
                continue
            configs = self.store.active(event.org_id)
            job = Job(tp, record.offset, max(1, len(configs)), self._on_job_done)
            if not configs:  # no active destination: nothing to deliver, no status
                job.settle()
                continue
            for config in configs:
                await self._start(Delivery(event, record.value, config, job, 1, now))

    def _open(self, tp: TopicPartition, offset: int) -> None:
        self.offsets.add(tp, offset)
        self.open_jobs += 1

    def _job_done(self, job: Job) -> None:
        self.open_jobs -= 1
        self.offsets.finish(job.tp, job.offset)

    async def _start(self, delivery: Delivery) -> None:
        config = delivery.config
        connected = config.integration.status == "connected"
        if connected and config.destination in self.lanes.destinations:
            self.lanes.submit(delivery)  # the hot path: nothing to await
        elif not connected:
            await self.settler.settle([(delivery, Outcome.skipped("integration_not_connected"))])
        else:
            error = PermanentError(
                f"{config.destination} is not enabled", code="destination_unavailable"
            )
            await self.settler.settle([(delivery, Outcome.from_error(error))])

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
        future = await self.publisher.dead_letter(record, exc)
        future.add_done_callback(lambda f: self._acked(f, job))

    def _acked(self, future: asyncio.Future[object], job: Job) -> None:
        if not future.cancelled() and future.exception() is None:
            job.settle()
        else:  # leave the offset uncommitted; the service reports itself unhealthy
            self.settler.on_fatal("producer failed to write the DLQ")

    async def _retry_record(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        try:
            retry = RetryRecord.from_json(record.value or b"")
            event = decode_event(retry.event, max(self.settings.max_event_bytes, len(retry.event)))
        except (InvalidEvent, ValueError, KeyError, TypeError) as exc:
            invalid = exc if isinstance(exc, InvalidEvent) else None
            await self._dead_letter(
                tp, record, invalid or InvalidEvent("invalid_retry_record", str(exc), "deserialize")
            )
            return
        job = Job(tp, record.offset, 1, self._on_job_done)
        delay = (retry.not_before - datetime.now(UTC)).total_seconds()
        handle = asyncio.get_running_loop().call_later(
            max(0.0, delay), lambda: asyncio.create_task(self._redeliver(job, retry, event))
        )
        self._timers[job] = handle
        self.metrics.retry_pending.set(len(self._timers))

    async def _redeliver(self, job: Job, retry: RetryRecord, event: EvaluationCompleted) -> None:
        self._timers.pop(job, None)
        self.metrics.retry_pending.set(len(self._timers))
        config: DestinationConfig | None = self.store.get(event.org_id, retry.destination)
        delivery_config = config or _placeholder(event, retry.destination)
        delivery = Delivery(
            event, retry.event, delivery_config, job, retry.attempt, retry.first_attempt_at
        )
        if config is None or not config.send_evaluations:
            await self.settler.settle([(delivery, Outcome.skipped("destination_inactive"))])
            return
        await self._start(delivery)

    def cancel_timers(self, tps: set[TopicPartition] | None = None) -> int:
        """Park waiting retries of `tps` (all when None): their records stay
        uncommitted, so the partition's next owner reads them again."""
        parked = 0
        for job, handle in list(self._timers.items()):
            if tps is None or job.tp in tps:
                handle.cancel()
                del self._timers[job]
                self.open_jobs -= 1
                parked += 1
        self.metrics.retry_pending.set(len(self._timers))
        return parked


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
