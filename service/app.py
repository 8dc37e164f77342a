"""Wires the service together and owns its lifecycle (start / run / stop).

config topic ──► TableReader ──► ConfigStore ─┐
evaluations ──┐                               ▼
delay tiers ──┴► Consumer ──► Router ──► Lanes (one per org x destination) ──┐
   ▲                                         │ Deliverer: stale check,      │ deferred
   │                                         ▼ secrets, circuit, write      ▼
   └──── retries, deferrals ◄── Outbox ◄── Settler ◄────────────────────────┘
         status / DLQ / watermarks ◄──┘ (one writer, acked before commit)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from service.config.store import ConfigStore
from service.config.validation import SPECS
from service.destinations import build_all
from service.destinations.base import Destination, DestinationContext
from service.endpoints import HttpServer, make_app
from service.metrics import Metrics
from service.outcomes import LastOutcomes
from service.pipeline.broker_watch import BrokerWatch
from service.pipeline.circuit import Circuits
from service.pipeline.consumer import Consumer
from service.pipeline.delays import TierGate
from service.pipeline.deliver import Deliverer
from service.pipeline.lanes import Lanes
from service.pipeline.offsets import OffsetTracker
from service.pipeline.outbox import Outbox
from service.pipeline.refusals import Refusals
from service.pipeline.restore import Restorer
from service.pipeline.router import Router
from service.pipeline.settle import Settler
from service.pipeline.state import StateStores
from service.pipeline.table import TableReader
from service.pipeline.topics import ensure_topics, misaligned, wait_for_topic
from service.pipeline.watermarks import Watermarks
from service.ratelimit import Share
from service.secrets import SecretStore
from service.settings import Settings
from service.states import ServiceStates

log = logging.getLogger(__name__)
T = TypeVar("T")


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        destinations: dict[str, Destination] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.destinations = destinations
        self.stopping = asyncio.Event()
        self.store = ConfigStore(self.metrics)
        self.stores = StateStores(
            settings.state_dir, settings.consumer_group, settings.topic_watermarks
        )
        self.watermarks = Watermarks(self.stores)
        self.restorer = Restorer(settings, self.stores)
        self.configs = TableReader(settings, settings.topic_configs, self.store.apply_record)
        self.producer = AIOKafkaProducer(
            **settings.kafka_client_args(),
            acks="all",
            enable_idempotence=False,  # at least once; consumers dedupe on (event_id, destination)
            linger_ms=5,
            max_batch_size=256 * 1024,
            max_request_size=16 * 1024 * 1024,  # the DLQ carries oversized events unchanged
        )
        refusals = Refusals.for_settings(settings, self.metrics)
        self.outbox = Outbox(self.producer, settings.topic_evaluations, refusals)
        self.offsets = OffsetTracker()
        self.consumer: Consumer | None = None
        self.watch: BrokerWatch | None = None
        self.exit_code = 0
        self.broken: str | None = None  # why /healthz fails, once the consume loop died
        self.share = Share()  # this instance's part of every tenant's rate limits
        self.lanes: Lanes | None = None
        self.circuits = Circuits(self.metrics, list(SPECS))
        self.outcomes = LastOutcomes()
        # GET /v1/destinations
        self.states = ServiceStates(
            self.store, self.outcomes, lane_depth=self._lane_depth, circuit=self.circuits.state_of
        )
        self.http = HttpServer(
            make_app(self.metrics, self.live, self.ready, self.states), settings.http_port
        )

    def _lane_depth(self, org_id: str, destination: str) -> int:
        return self.lanes.depth(org_id, destination) if self.lanes is not None else 0

    def live(self) -> tuple[bool, str]:
        """The event loop answers, and the outbox is not stuck: records waiting
        with no flush completing for BROKER_UNAVAILABLE_EXIT_S (a restart may
        help; any completed flush makes it healthy again). Kafka trouble short
        of that shows in readiness only (§7)."""
        if self.broken is not None:
            return False, self.broken
        stalled = self.outbox.stalled_s()
        if stalled >= self.settings.broker_unavailable_exit_s:
            return False, f"outbox stalled for {stalled:.0f}s (BROKER_UNAVAILABLE_EXIT_S)"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        checks = {
            "configs_caught_up": self.configs.caught_up.is_set(),
            "assigned": self.consumer is not None and self.consumer.assigned,
            "running": not self.stopping.is_set(),
            "kafka_writable": self.outbox.failing_since is None,
            "broker_reachable": self.watch is None or self.watch.reachable,
            "state_restored": not self.restorer.busy
            and (self.consumer is None or not self.consumer.rebalance.unrestored),
        }
        ok = all(checks.values())
        self.metrics.ready.set(1 if ok else 0)
        return ok, ", ".join(name for name, passed in checks.items() if not passed) or "ok"

    async def run(self) -> None:
        """Run until `stopping` is set, then shut down within SHUTDOWN_TIMEOUT_S."""
        s = self.settings
        await self.http.start()
        log.info("http on :%d (/metrics /healthz /readyz /v1/destinations)", self.http.port)
        admin = AIOKafkaAdminClient(**s.kafka_client_args())
        await admin.start()
        self.watch = BrokerWatch(admin, s.broker_unavailable_exit_s, self._give_up)
        watching = asyncio.create_task(self.watch.run(), name="broker-watch")
        destinations = self.destinations
        if destinations is None:
            context = DestinationContext(settings=s, metrics=self.metrics, share=self.share)
            destinations = build_all(context)
        try:
            await self.producer.start()
            await self.configs.start(admin)
            for entry in s.config_entries:  # CONFIG_FILE, validated like topic records
                self.store.apply_object(entry)
            if s.config_file is not None:
                log.info("loaded %d configs from %s", len(s.config_entries), s.config_file)
            partitions = await self._until_stopped(wait_for_topic(admin, s.topic_evaluations))
            if partitions is None:
                return
            await ensure_topics(admin, s, partitions)
            if problems := await misaligned(admin, s, partitions):
                for problem in problems:
                    log.error("cannot start: %s", problem)
                self.exit_code = 2  # a deployment error, like a bad setting
                return
            await self.restorer.start()
            for destination in destinations.values():
                await destination.setup()
            if await self._until_stopped(self.configs.caught_up.wait()) is None:
                return
            await self._consume(destinations)
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await self._stop_all(destinations, admin)

    async def _consume(self, destinations: dict[str, Destination]) -> None:
        s = self.settings
        settler = Settler(s, self.metrics, self.outbox, self.watermarks, self.outcomes.observe)
        secrets = SecretStore(s.secrets_dir, self.metrics)
        deliverer = Deliverer(self.metrics, secrets, self.watermarks, settler)
        lanes = self.lanes = Lanes(
            destinations,
            self.circuits,
            deliverer,
            settler.defer,
            self.metrics,
            capacity=s.lane_capacity,
            linger_s=s.batch_linger_ms / 1000,
        )
        gate = TierGate(s.topic_retry)
        router = Router(
            s, self.metrics, self.store, lanes, settler, self.outbox, self.offsets, gate
        )
        self.consumer = Consumer(
            s, self.metrics, router, self.offsets, lanes, self.outbox, self.restorer, self.share
        )
        writer = asyncio.create_task(self.outbox.run(), name="outbox")
        try:
            try:
                await self.consumer.run(self.stopping)
            except Exception:  # never a zombie that answers /healthz and consumes nothing
                self.broken = "the consume loop failed"
                log.exception("the consume loop failed; exiting 1 so that it is restarted")
                self.exit_code = 1
                self.stop()
                raise
            log.info("stopping: handing back in-flight work")
            assignment = self.consumer.kafka.assignment()
            finished = await self.consumer.hand_back(assignment, max(1.0, s.shutdown_timeout_s - 5))
            log.info("final commit done (in-flight writes finished: %s)", finished)
        finally:
            await lanes.stop()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            await self.consumer.stop()

    async def _until_stopped(self, work: Awaitable[T]) -> T | None:
        """Await `work` unless a stop comes first (then None)."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return None

    async def _stop_all(
        self, destinations: dict[str, Destination], admin: AIOKafkaAdminClient
    ) -> None:
        for destination in destinations.values():
            try:
                await destination.close()
            except Exception:
                log.exception("closing %s failed", destination.name)
        await self.configs.stop()
        await self.restorer.stop()
        self.stores.close(set(self.stores.parts))
        await self.producer.stop()
        await admin.close()
        await self.http.stop()
        log.info("stopped")

    def stop(self) -> None:
        self.stopping.set()

    def _give_up(self, why: str) -> None:
        """Stop, and make `python -m service` exit non-zero (§7)."""
        self.exit_code = 1
        self.stop()
