"""One partition's records to Kafka: into batches, to the producer, and what
each batch's outcome means (acked, to send again, or refused for good).

A broker refuses a whole batch, not one record, so a batch of several refused
for a record-level reason (too large, invalid) is sent again one record a
batch: the others go through and only the culprit is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from service.pipeline.records import Outgoing
from service.pipeline.refusals import Refusal, Refusals, classify

# send_batch skips the producer's max_request_size check, so records are checked
# here: a bigger one is refused at once (a broker would refuse it, or drop the
# connection past socket.request.max.bytes, which looks transient forever).
MAX_RECORD_BYTES = 16 * 1024 * 1024
Sent = tuple[list[Outgoing], BaseException | None]  # to send again; first transient error
Batches = list[tuple[Any, list[Outgoing]]]  # an aiokafka BatchBuilder and its records


class Producer(Protocol):
    """The part of AIOKafkaProducer the outbox uses (a fake in unit tests)."""

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any: ...

    async def partitions_for(self, topic: str) -> set[int]: ...


class PartitionSender:
    def __init__(self, producer: Producer, refusals: Refusals, max_record_bytes: int) -> None:
        self.producer = producer
        self.refusals = refusals
        self.max_record_bytes = max_record_bytes

    async def send(
        self, topic: str, partition: int, items: list[Outgoing], *, alone: bool = False
    ) -> Sent:
        """Send `items` in as few batches as fit (one record a batch when `alone`).
        Returns the records to send again (those of batches that failed
        transiently, and the DLQ copies of refused records) and the first
        transient error."""
        again: list[Outgoing] = []
        batches = self._pack(partition, items, alone, again)
        results = await self._submit(topic, partition, batches)
        error = None
        for (_, members), result in zip(batches, results, strict=True):
            if result is None:
                continue
            refusal = classify(result)
            if refusal is None:
                again += members
                error = error or result
            elif len(members) > 1 and not refusal.whole_topic:
                more, failed = await self.send(topic, partition, members, alone=True)
                again += more
                error = error or failed
            else:
                for member in members:
                    self._refuse(again, member, partition, refusal, repr(result))
        return again, error

    def _pack(
        self, partition: int, items: list[Outgoing], alone: bool, again: list[Outgoing]
    ) -> Batches:
        """Batches for `items`; a record that cannot go at all is refused here."""
        packed: Batches = []
        batch: Any = None
        members: list[Outgoing] = []
        for item in items:
            try:
                if (size := item.size()) > self.max_record_bytes:
                    why = f"{size} bytes, over the {self.max_record_bytes} the outbox sends"
                    self._refuse(again, item, partition, Refusal.RECORD_TOO_LARGE, why)
                    continue
                if batch is None or (alone and members) or not _append(batch, item):
                    batch, members = self.producer.create_batch(), []
                    packed.append((batch, members))
                    if not _append(batch, item):  # not even into an empty batch
                        why = "it does not fit an empty batch (max_batch_size)"
                        self._refuse(again, item, partition, Refusal.RECORD_TOO_LARGE, why)
                        continue
            except Exception as exc:  # this record cannot be encoded
                batch = None  # the next record starts a new batch
                self._refuse(again, item, partition, Refusal.UNENCODABLE, repr(exc))
                continue
            members.append(item)
        return [(b, m) for b, m in packed if m]

    async def _submit(
        self, topic: str, partition: int, batches: Batches
    ) -> list[BaseException | None]:
        """Each batch's outcome: None when acknowledged, else the error."""
        acks: list[Any] = []
        error: BaseException | None = None
        for batch, _ in batches:
            try:
                acks.append(await self.producer.send_batch(batch, topic, partition=partition))
            except Exception as exc:  # the batches after it would fail the same way
                error = exc
                break
        results = await asyncio.gather(*acks, return_exceptions=True)
        outcomes = [r if isinstance(r, BaseException) else None for r in results]
        return outcomes + [error] * (len(batches) - len(acks))

    def _refuse(
        self,
        again: list[Outgoing],
        record: Outgoing,
        partition: int,
        refusal: Refusal,
        cause: str,
    ) -> None:
        copy = self.refusals.refuse(record, partition, refusal, cause)
        if copy is not None:
            again.append(copy)


def _append(batch: Any, item: Outgoing) -> bool:
    """False when the batch is full (aiokafka's append answers None)."""
    headers = list(item.headers)
    return batch.append(key=item.key, value=item.value, timestamp=None, headers=headers) is not None
