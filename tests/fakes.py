"""Fakes for the pipeline's seams: a producer for the outbox, a sink for the
settler, and a Delivery builder. No Kafka involved."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition

from devkit.factories import make_config, make_event
from service.models import EVENT, DestinationConfig
from service.pipeline.offsets import PartitionOffsets
from service.pipeline.outbox import Done
from service.pipeline.records import Outgoing
from service.pipeline.state import StateStores
from service.pipeline.tiers import TierRecord
from service.pipeline.watermarks import Watermarks
from service.pipeline.work import Delivery, Job


class FakeBatch:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: list[tuple[Any, Any, Any]] = []

    def append(self, *, key: Any, value: Any, timestamp: Any, headers: Any = ()) -> object | None:
        if len(self.items) >= self.size:
            return None
        self.items.append((key, value, list(headers)))
        return object()


class FakeProducer:
    """Acks each batch at once, or fails the next `fail` sends."""

    def __init__(self, partitions: int = 3, batch_size: int = 1000) -> None:
        self.partitions = partitions
        self.batch_size = batch_size
        self.fail = 0
        self.sent: list[tuple[str, int, list[tuple[Any, Any, Any]]]] = []

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.batch_size)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            self.fail -= 1
            future.set_exception(TimeoutError("broker away"))
        else:
            self.sent.append((topic, partition, batch.items))
            future.set_result(None)
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))


class ListQueue:
    def __init__(self) -> None:
        self.records: list[Outgoing] = []

    async def put(self, records: Sequence[Outgoing], done: Done | None = None) -> None:
        self.records.extend(records)
        if done is not None:
            done()

    def values(self, topic_suffix: str) -> list[dict[str, Any]]:
        return [
            orjson.loads(r.value or b"") for r in self.records if r.topic.endswith(topic_suffix)
        ]

    def delayed(self) -> list[TierRecord]:
        """The delay-tier records (retries and deferrals), read back as the router would."""
        return [TierRecord.read(r.value, r.headers) for r in self.records if ".retry" in r.topic]


class RecordingOffsets(PartitionOffsets):
    """A partition's offsets that also lists each offset as it finishes."""

    def __init__(self, finished: list[int]) -> None:
        super().__init__()
        self.finished = finished

    def finish(self, offset: int) -> None:
        if offset in self._sizes:
            self.finished.append(offset)
        super().finish(offset)


def job_of(
    tp: TopicPartition | None = None, offset: int = 0, finished: list[int] | None = None
) -> Job:
    """A Job of one delivery whose offset, once finished, lands in `finished`."""
    offsets = RecordingOffsets(finished if finished is not None else [])
    offsets.add(offset)
    return Job(tp or TopicPartition("t", 0), offset, 1, offsets)


def delivery(
    config: DestinationConfig | None = None,
    *,
    attempt: int = 1,
    first_attempt_at: datetime | None = None,
    job: Job | None = None,
    **event: Any,
) -> Delivery:
    raw = orjson.dumps(make_event(**event))
    config = config or DestinationConfig.model_validate(make_config("salesforce"))
    job = job or job_of()
    return Delivery(
        EVENT.validate_json(raw), raw, config, job, attempt, first_attempt_at or datetime.now(UTC)
    )


def watermarks(*partitions: int) -> Watermarks:
    """Watermarks on real RocksDB stores in a temporary directory (partition 0 by default)."""
    stores = StateStores(Path(tempfile.mkdtemp(prefix="marks-")), "group", "marks")
    for partition in partitions or (0,):
        stores.open(partition)
    return Watermarks(stores)
