"""Wires the service together and owns its lifecycle (start / run / stop).

evaluations (org:lead) ──► Repartitioner (stage 1: decode, DLQ) ──► work topic (org)
config topic ──► TableReader ──► ConfigStore ─┐
work topic ───┐                               ▼
delay tiers ──┴► Consumer ──► Router ──► Lanes (one per org x destination) ──┐
   ▲          (stage 2)                      │ Deliverer: stale check,      │ deferred
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

from service.api.endpoints import HttpServer, make_app
from service.api.outcomes import LastOutcomes
from service.api.states import ServiceStates
from service.config.store import ConfigStore
from service.config.validation import SPECS
from service.destinations import build_all
from service.destinations.base import Destination, DestinationContext
from service.metrics import Metrics
from service.pipeline.broker_watch import BrokerWatch
from service.pipeline.circuit import Circuits
from service.pipeline.consumer import Consumer
from service.pipeline.cutover import wait_for_earlier_version
from service.pipeline.deliver import Deliverer
from service.pipeline.lanes import Lanes
from service.pipeline.layout import Layout, stage2_settings
from service.pipeline.legacy import LegacyMarks
from service.pipeline.offsets import OffsetTracker
from service.pipeline.outbox import Outbox
from service.pipeline.refusals import Refusals
from service.pipeline.repartition import Forward, Repartitioner
from service.pipeline.restore import Restorer
from service.pipeline.router import Router
from service.pipeline.settle import Settler
from service.pipeline.state import StateStores
from service.pipeline.table import TableReader
from service.pipeline.tiers import TierGate
from service.pipeline.topics import ensure_topics, existing, misaligned, wait_for_topic
from service.pipeline.watermarks import Watermarks
from service.ratelimit import Handoffs
from service.secrets import SecretStore
from service.settings import Settings

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
        self.layout = Layout.of(settings)
        self.work_settings = stage2_settings(settings)  # the delivery pipeline's names
        self.metrics = metrics or Metrics()
        self.destinations = destinations
        self.stopping = asyncio.Event()
        self.store = ConfigStore(self.metrics)
        w = self.work_settings
        self.stores = StateStores(w.state_dir, w.consumer_group, w.topic_watermarks)
        self.watermarks = Watermarks(self.stores)
        self.restorer = Restorer(w, self.stores)
        self.configs = TableReader(settings, settings.topic_configs, self.store.apply_record)
        self.producer = AIOKafkaProducer(
            **settings.kafka_client_args(),
            acks="all",
            enable_idempotence=False,  # at least once; consumers dedupe on (event_id, destination)
            linger_ms=5,
            max_batch_size=256 * 1024,
            max_request_size=16 * 1024 * 1024,  # the DLQ carries oversized events unchanged
        )
        # Stage 2's records. Statuses go where the Java client puts their `org:lead` key
        # (as before, when they followed the evaluations' partitions): a big org's
        # statuses spread over the status topic, not into its one work partition.
        refusals = Refusals.for_settings(settings, self.metrics)
        self.outbox = Outbox(
            self.producer,
            settings.topic_work,
            refusals,
            keyed=frozenset({settings.topic_status}),
        )
        self.forwarded = Outbox(self.producer, settings.topic_evaluations, refusals)  # stage 1's
        self.legacy = LegacyMarks(
            settings, self.layout.legacy_changelog, self.layout.changelog, self.stores, self.outbox
        )
        self.offsets = OffsetTracker()
        self.consumer: Consumer | None = None
        self.repartitioner: Repartitioner | None = None
        self.waiting_for_earlier = False  # a rolling upgrade: the old pods still consume
        self.watch: BrokerWatch | None = None
        self.exit_code = 0
        self.broken: str | None = None  # why /healthz fails, once the consume loop died
        self.handoffs = Handoffs()  # tenants taken over from another instance
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
        stalled = max(self.outbox.stalled_s(), self.forwarded.stalled_s())
        if stalled >= self.settings.broker_unavailable_exit_s:
            return False, f"outbox stalled for {stalled:.0f}s (BROKER_UNAVAILABLE_EXIT_S)"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        checks = {
            "configs_caught_up": self.configs.caught_up.is_set(),
            "assigned": self.waiting_for_earlier
            or (self.consumer is not None and self.consumer.assigned),
            "running": not self.stopping.is_set(),
            "kafka_writable": self.outbox.failing_since is None
            and self.forwarded.failing_since is None,
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
            context = DestinationContext(settings=s, metrics=self.metrics, handoffs=self.handoffs)
            destinations = build_all(context)
        try:
            await self.producer.start()
            await self.configs.start(admin)
            if s.config_file is not None:  # validated like topic records
                log.info("loaded %d configs from %s", self._load_config_file(), s.config_file)
            partitions = await self._until_stopped(wait_for_topic(admin, s.topic_evaluations))
            if partitions is None:
                return
            work_partitions = await ensure_topics(admin, s, partitions)
            if problems := await misaligned(admin, s, work_partitions):
                for problem in problems:
                    log.error("cannot start: %s", problem)
                self.exit_code = 2  # a deployment error, like a bad setting
                return
            await self.restorer.start()
            await self.legacy.start(admin)
            legacy_tiers = await existing(admin, self.layout.legacy_tiers)
            for destination in destinations.values():
                await destination.setup()
            if await self._until_stopped(self.configs.caught_up.wait()) is None:
                return
            await self._until_stopped(
                wait_for_earlier_version(admin, s.consumer_group, self._waiting_for_earlier)
            )
            if self.stopping.is_set():
                return
            self.waiting_for_earlier = False
            await self._consume(destinations, work_partitions, legacy_tiers)
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await self._stop_all(destinations, admin)

    async def _consume(
        self, destinations: dict[str, Destination], work_partitions: int, legacy_tiers: list[str]
    ) -> None:
        s = self.work_settings
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
            s,
            self.metrics,
            router,
            self.offsets,
            lanes,
            self.outbox,
            self.restorer,
            self.handoffs,
            self.legacy,
        )
        forward = Forward(self.settings, self.metrics, work_partitions)
        self.repartitioner = Repartitioner(
            self.settings, self.metrics, self.forwarded, forward, legacy_tiers
        )
        writers = [
            asyncio.create_task(self.outbox.run(), name="outbox"),
            asyncio.create_task(self.forwarded.run(), name="outbox-stage1"),
        ]
        stage1 = asyncio.create_task(self.repartitioner.run(self.stopping), name="stage1")
        stage1.add_done_callback(self._stage1_ended)
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
            await asyncio.wait_for(asyncio.shield(stage1), max(1.0, s.shutdown_timeout_s - 5))
        finally:
            stage1.cancel()
            await asyncio.gather(stage1, return_exceptions=True)
            await lanes.stop()
            for writer in writers:
                writer.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
            await self.consumer.stop()

    def _load_config_file(self) -> int:
        """CONFIG_FILE into the store; its parsed entries go once applied."""
        entries = self.settings.config_entries
        for entry in entries:
            self.store.apply_object(entry)
        return len(entries)

    def _waiting_for_earlier(self) -> None:
        """Ready while an earlier version's pods consume: a rolling update goes on,
        each new pod lets an old one go, and the last to leave hands everything over."""
        self.waiting_for_earlier = True

    def _stage1_ended(self, task: asyncio.Task[None]) -> None:
        """Stage 1 ends at a stop; anything else stops the service (exit 1)."""
        if task.cancelled() or self.stopping.is_set():
            return
        log.error("stage 1 stopped unexpectedly: %r", task.exception())
        self._give_up("stage 1 failed")

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
