"""One lane batch: drop stale evaluations, load credentials, write, settle.

Never raises: whatever goes wrong becomes an Outcome, so every delivery
reaches a status (the contract's guarantee) and no lane dies.
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic

from service.destinations.base import Batch, Outcome, WorkItem
from service.errors import DeliveryError, QuotaExhausted, RateLimited, TransientError
from service.metrics import Metrics
from service.pipeline.lanes import Lane
from service.pipeline.settle import Settler
from service.pipeline.watermarks import Watermarks
from service.pipeline.work import Delivery
from service.secrets import SecretStore

log = logging.getLogger(__name__)
# A 429 asking for at most this long is waited out in the lane (the records stay
# uncommitted, so it is durable); longer waits go through the retry topic.
LANE_WAIT_MAX_S = 60.0


class Deliverer:
    def __init__(
        self, metrics: Metrics, secrets: SecretStore, watermarks: Watermarks, settler: Settler
    ) -> None:
        self.metrics = metrics
        self.secrets = secrets
        self.watermarks = watermarks
        self.settler = settler

    async def __call__(self, lane: Lane, batch: list[Delivery]) -> None:
        destination = lane.destination.name
        try:
            await self._deliver(lane, batch)
        except Exception:  # a bug here must not lose deliveries: retry them later
            log.exception("unexpected error delivering to %s", destination)
            error = TransientError("internal error in the delivery service", code="internal_error")
            await self.settler.settle([(d, Outcome.from_error(error)) for d in batch])

    async def _deliver(self, lane: Lane, batch: list[Delivery]) -> None:
        fresh, stale = self.watermarks.split(batch)
        if stale:
            await self.settler.settle([(d, Outcome.skipped("stale_evaluation")) for d in stale])
        if not fresh:
            return
        if lane.unavailable_for:  # quota spent: park in the retry topic, attempts untouched
            wait = QuotaExhausted("destination quota exhausted", retry_after=lane.unavailable_for)
            await self._settle_all(fresh, Outcome.from_error(wait), spend_attempt=False)
            return
        config = fresh[0].config
        try:
            credentials = self.secrets.load(config)
        except DeliveryError as exc:
            await self._settle_all(fresh, Outcome.from_error(exc))
            return
        work = Batch(config, credentials, [WorkItem(d.event, d.attempt) for d in fresh])
        outcomes = await self._write(lane, work)
        if isinstance(outcomes, QuotaExhausted):
            lane.unavailable_until = monotonic() + outcomes.retry_after
            await self._settle_all(fresh, Outcome.from_error(outcomes), spend_attempt=False)
        elif isinstance(outcomes, DeliveryError):
            await self._settle_all(fresh, Outcome.from_error(outcomes))
        else:
            await self.settler.settle(list(zip(fresh, outcomes, strict=True)))

    async def _write(self, lane: Lane, work: Batch) -> list[Outcome] | DeliveryError:
        name = lane.destination.name
        waited = 0.0
        while True:
            try:
                outcomes = await lane.destination.write(work)
            except QuotaExhausted as exc:
                return exc
            except RateLimited as exc:
                waited += exc.retry_after
                if exc.retry_after > LANE_WAIT_MAX_S or waited > 5 * LANE_WAIT_MAX_S:
                    return exc  # a long wait belongs in the retry topic
                log.info("%s rate limited; lane waits %.1fs", name, exc.retry_after)
                self.metrics.circuit_open.labels(name).inc()
                try:
                    await asyncio.sleep(exc.retry_after)
                finally:
                    self.metrics.circuit_open.labels(name).dec()
                continue
            except DeliveryError as exc:
                return exc
            if len(outcomes) != len(work.items):
                log.error(
                    "%s returned %d outcomes for %d items", name, len(outcomes), len(work.items)
                )
                return TransientError(
                    "destination returned a wrong outcome count", code="internal_error"
                )
            return outcomes

    async def _settle_all(
        self, batch: list[Delivery], outcome: Outcome, *, spend_attempt: bool = True
    ) -> None:
        await self.settler.settle([(d, outcome) for d in batch], spend_attempt=spend_attempt)
