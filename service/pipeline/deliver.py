"""One lane batch: drop stale evaluations, load credentials, write, settle.

Never raises: whatever goes wrong becomes an outcome, so every delivery reaches
a status (the contract's guarantee), and a probe always closes or reopens its
circuit, or hands the probe on. Destination-wide conditions (a rate limit,
a spent quota, an open circuit) defer the work without spending attempts;
only a failed write of the records themselves spends one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from time import time
from typing import Any

from service.destinations.base import Batch, Outcome, WorkItem
from service.errors import DeliveryError, QuotaExhausted, RateLimited, TransientError
from service.metrics import Metrics
from service.models import DeliveryState, ErrorInfo
from service.pipeline.circuit import Circuit
from service.pipeline.lanes.lane import Lane
from service.pipeline.settle import Settler
from service.pipeline.watermarks import Watermarks
from service.pipeline.work import Delivery
from service.secrets import SecretStore

log = logging.getLogger(__name__)
# A 429 asking for at most this long is waited out in the lane, outside the write
# slots (its records stay uncommitted, so that is durable); a longer one defers
# the batch and puts the lane on hold.
LANE_WAIT_MAX_S = 5.0
LANE_WAITS = 3  # in-lane waits for one batch; then it is deferred (no tight 429 loops)
# Concurrent writes per destination: each holds a request, its body and a TLS
# connection's buffers, so a thousand lanes writing at once would hold a thousand
# of them; beyond this many, lanes wait here, with only their queues in memory.
WRITES_PER_DESTINATION = 32
INTERNAL = TransientError("internal error in the delivery service", code="internal_error")
Result = list[Outcome] | DeliveryError | None  # None: abandoned (the partition was revoked)


class Deliverer:
    def __init__(
        self, metrics: Metrics, secrets: SecretStore, watermarks: Watermarks, settler: Settler
    ) -> None:
        self.metrics = metrics
        self.secrets = secrets
        self.watermarks = watermarks
        self.settler = settler
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def __call__(self, lane: Lane, batch: list[Delivery], probe: bool) -> bool:
        """Deliver one lane batch; True when the destination answered it at once (the
        lane measures its rate on those). Raises nothing but CancelledError."""
        circuit = lane.circuit_of(batch[0])
        try:
            return await self._deliver(lane, batch, probe, circuit)
        except Exception:  # a bug here must not lose deliveries: retry them later
            log.exception("unexpected error delivering to %s", lane.destination.name)
            self.metrics.internal_errors.labels("deliver").inc()
            # Settle skips what is settled already: each delivery counts down once.
            kept = [(d, Outcome.from_error(INTERNAL)) for d in batch if not d.job.revoked]
            await self.settler.settle(kept)
            return False
        finally:
            if probe and circuit.probing:  # nothing closed or reopened it: let another try
                circuit.released()

    async def _deliver(
        self, lane: Lane, batch: list[Delivery], probe: bool, circuit: Circuit
    ) -> bool:
        fresh, stale, duplicate = self.watermarks.split(batch)
        skipped = [(d, Outcome.skipped("stale_evaluation")) for d in stale]
        skipped += [(d, Outcome.skipped("duplicate")) for d in duplicate]
        if skipped:
            await self.settler.settle(skipped)
        if not fresh:
            return False
        try:
            credentials = self.secrets.load(fresh[0].config)
        except DeliveryError as exc:
            await self.settler.settle([(d, Outcome.from_error(exc)) for d in fresh])
            return False
        result, fresh, waited = await self._write_waiting(lane, fresh, credentials)
        if result is None:  # abandoned: its partition has a new owner
            kept = [(d, time()) for d in fresh if not d.job.revoked]
            if kept:
                await self.settler.defer(kept)  # no attempt spent: nothing was answered
            return False
        if isinstance(result, RateLimited):  # incl. a spent quota: the lane waits, in Kafka
            lane.hold_until = time() + result.retry_after
            await self.settler.defer(
                [(d, lane.due(result.retry_after)) for d in fresh], result.info()
            )
            return False
        down = _destination_down(result)
        if down is not None:
            circuit.failed(down.code)
            if probe:  # a failed probe spends nothing: the circuit is what failed
                await self.settler.defer([(d, lane.due(circuit.wait_s())) for d in fresh], down)
                return False
            # Failed with their destination: back when it is (the circuit's next probe).
            wait = circuit.wait_s()
            await self.settler.settle(
                [
                    (d, Outcome(DeliveryState.RETRYING, error=down, retry_after=wait, outage=True))
                    for d in fresh
                ]
            )
            return False
        circuit.succeeded()  # the destination answered, even if it said no
        if isinstance(result, DeliveryError):
            await self.settler.settle([(d, Outcome.from_error(result)) for d in fresh])
        else:
            await self.settler.settle(list(zip(fresh, result, strict=True)))
        return not waited

    async def _write_waiting(
        self, lane: Lane, fresh: list[Delivery], credentials: Mapping[str, Any]
    ) -> tuple[Result, list[Delivery], bool]:
        """The write, waiting out short Retry-Afters between tries without holding a
        write slot (32 rate-limited orgs must not stall every other org)."""
        name = lane.destination.name
        slots = self._slots.get(name) or self._slots.setdefault(
            name, asyncio.Semaphore(WRITES_PER_DESTINATION)
        )
        waits = 0
        while True:
            async with slots:
                fresh = [d for d in fresh if not d.job.revoked]  # abandoned while waiting
                if not fresh:
                    return None, fresh, waits > 0
                for d in fresh:
                    d.sent = True  # from here the CRM may hold it (settle marks it)
                items = [WorkItem(d.event, d.attempt) for d in fresh]
                result = await self._write_or_abandon(
                    lane, Batch(fresh[0].config, credentials, items)
                )
            if (
                not isinstance(result, RateLimited)
                or isinstance(result, QuotaExhausted)
                or result.retry_after > LANE_WAIT_MAX_S
                or waits >= LANE_WAITS
            ):
                return result, fresh, waits > 0
            log.info("%s rate limited; lane waits %.1fs", name, result.retry_after)
            waits += 1
            await asyncio.sleep(result.retry_after)

    async def _write_or_abandon(self, lane: Lane, work: Batch) -> Result:
        """The write, as a task that Lanes.abandon may cancel (None then)."""
        write = asyncio.ensure_future(self._write(lane, work))
        lane.writing = write
        try:
            return await write
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not write.cancelled() or (task is not None and task.cancelling()):
                raise  # we are being stopped, not the write abandoned
            log.warning("%s write abandoned: its partition was revoked", lane.destination.name)
            return None
        finally:
            lane.writing = None

    async def _write(self, lane: Lane, work: Batch) -> list[Outcome] | DeliveryError:
        name = lane.destination.name
        try:
            outcomes = await lane.destination.write(work)
        except DeliveryError as exc:
            return exc
        if len(outcomes) != len(work.items):
            log.warning(
                "%s returned %d outcomes for %d items", name, len(outcomes), len(work.items)
            )
            return TransientError(
                "destination returned a wrong number of results", code="bad_response"
            )
        return outcomes


# Transient codes that say the destination itself is failing, not one record.
DOWN_CODES = frozenset({"server_error", "timeout", "connection_error", "bad_response"})


def _destination_down(result: list[Outcome] | DeliveryError) -> ErrorInfo | None:
    """What failed, when the whole batch failed transiently (5xx, timeout,
    connection, unreadable answer): raised for the batch, or, as HubSpot's and
    Salesforce's destinations report a failed lookup, on every record."""
    if isinstance(result, TransientError) and not isinstance(result, RateLimited):
        return result.info()
    if isinstance(result, DeliveryError) or not result:
        return None
    errors = [o.error for o in result if o.state is DeliveryState.RETRYING]
    if len(errors) == len(result) and all(e is not None and e.code in DOWN_CODES for e in errors):
        return errors[0]
    return None
