"""A record Kafka never accepts never blocks the outbox (issue 19, finding 8):
it is refused on its own (a DLQ copy without the value, a log line, a metric),
its callback runs, and the records after it go through in put order. Transient
errors are retried; an outbox that makes no progress at all fails /healthz."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import errors as kafka

from service.app import Service
from service.metrics import PRODUCE_REFUSALS, Metrics
from service.pipeline import outbox as outbox_module
from service.pipeline.outbox import Outbox
from service.pipeline.records import Outgoing
from service.pipeline.refusals import Refusal, Refusals, classify
from service.settings import Settings
from tests.fakes import FakeBatch, FakeProducer

Items = list[tuple[Any, Any, Any]]


class StrictBatch(FakeBatch):
    """Like aiokafka's BatchBuilder: bytes only, and a byte budget that the
    first record may exceed unless it is over `hard` (a fake's "cannot fit")."""

    def __init__(self, size: int, budget: int = 10_000, hard: int = 10**9) -> None:
        super().__init__(size)
        self.budget, self.hard, self.used = budget, hard, 0

    def append(self, *, key: Any, value: Any, timestamp: Any, headers: Any = ()) -> object | None:
        if not isinstance(value, bytes | None):
            raise TypeError(f"Not supported type for value: {type(value)}")
        size = len(value or b"")
        if size > self.hard or (self.items and self.used + size > self.budget):
            return None
        self.used += size
        return super().append(key=key, value=value, timestamp=timestamp, headers=headers)


class Broker(FakeProducer):
    """Refuses, like a broker, a whole batch when `verdict` finds fault with it;
    `unauthorized` topics fail at metadata time. Counts every batch sent."""

    def __init__(
        self,
        verdict: Callable[[str, Items], BaseException | None] = lambda _t, _i: None,
        *,
        unauthorized: frozenset[str] = frozenset(),
        hard: int = 10**9,
    ) -> None:
        super().__init__(partitions=3)
        self.verdict, self.unauthorized, self.hard = verdict, unauthorized, hard
        self.attempts: list[tuple[str, int]] = []  # (topic, records) of every batch sent

    def create_batch(self) -> StrictBatch:
        return StrictBatch(self.batch_size, hard=self.hard)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.attempts.append((topic, len(batch.items)))
        error = self.verdict(topic, batch.items)
        if error is None:
            return await super().send_batch(batch, topic, partition=partition)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_exception(error)
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        if topic in self.unauthorized:
            raise kafka.TopicAuthorizationFailedError(topic)
        return await super().partitions_for(topic)

    def values(self, topic: str) -> list[bytes | None]:
        return [value for t, _, items in self.sent if t == topic for _, value, _ in items]

    def records(self, topic: str) -> Items:
        return [item for t, _, items in self.sent if t == topic for item in items]


def too_large_over(limit: int) -> Callable[[str, Items], BaseException | None]:
    def verdict(_topic: str, items: Items) -> BaseException | None:
        big = any(len(value or b"") > limit for _, value, _ in items)
        return kafka.MessageSizeTooLargeError() if big else None

    return verdict


def refused(metrics: Metrics, kind: str, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "trailspark_destinations_produce_refused_total", {"topic_kind": kind, "reason": reason}
    )
    return value or 0.0


def outbox_for(producer: FakeProducer, metrics: Metrics, **kw: Any) -> Outbox:
    kinds = {"status": "status", "dlq": "dlq", "marks": "watermark", "retry": "retry"}
    return Outbox(producer, "leads", Refusals(metrics, dlq_topic="dlq", kinds=kinds), **kw)


async def run_until_acked(outbox: Outbox, timeout: float = 5) -> None:
    writer = asyncio.create_task(outbox.run())
    try:
        await asyncio.wait_for(outbox.barrier(), timeout)
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


DEAD_LETTER = Outgoing(
    "dlq",
    b"org_1:lead_1",
    b"x" * 500,
    1,
    (
        ("trace", b"t-1"),
        ("error.code", b"event_too_large"),
        ("error.stage", b"deserialize"),
        ("error.message", b"event is 500 bytes"),
        ("source.offset", b"7"),
    ),
)


@pytest.mark.parametrize(
    ("error", "refusal"),
    [
        (kafka.MessageSizeTooLargeError(), Refusal.RECORD_TOO_LARGE),
        (kafka.RecordListTooLargeError(), Refusal.RECORD_TOO_LARGE),
        (kafka.CorruptRecordException(), Refusal.INVALID_RECORD),
        (kafka.TopicAuthorizationFailedError("t"), Refusal.TOPIC_UNAUTHORIZED),
        (kafka.InvalidTopicError(), Refusal.INVALID_TOPIC),
        # Retried: a broker away, a leader moving, a batch that expired meanwhile,
        # and UnknownError (also how aiokafka reports INVALID_RECORD, code 87).
        (kafka.NotLeaderForPartitionError(), None),
        (kafka.LeaderNotAvailableError(), None),
        (kafka.RequestTimedOutError(), None),
        (kafka.NotEnoughReplicasError(), None),
        (kafka.UnknownTopicOrPartitionError(), None),
        (kafka.KafkaConnectionError(), None),
        (kafka.KafkaTimeoutError(), None),
        (kafka.UnknownError(), None),
        (TimeoutError(), None),
    ],
)
def test_permanent_refusals_and_transient_errors_are_told_apart(
    error: BaseException, refusal: Refusal | None
) -> None:
    assert classify(error) is refusal


def test_refusal_reasons_are_primed_metric_labels() -> None:
    assert {r.value for r in Refusal} == set(PRODUCE_REFUSALS)
    assert refused(Metrics(), "dlq", "record_too_large") == 0.0  # exported before any refusal
    sample = Metrics().registry.get_sample_value
    name = "trailspark_destinations_produce_refused_total"
    assert sample(name, {"topic_kind": "status", "reason": "topic_unauthorized"}) == 0.0


async def test_a_record_too_large_is_refused_alone_and_the_others_go_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = Broker(too_large_over(400))
    metrics = Metrics()
    outbox = outbox_for(producer, metrics)
    acked: list[str] = []
    small = [Outgoing("dlq", b"k", b"small-%d" % i, 1) for i in range(2)]
    await outbox.put([small[0], DEAD_LETTER, small[1]], lambda: acked.append("a"))
    await outbox.put([Outgoing("status", b"k", b"s", 0)], lambda: acked.append("b"))
    await run_until_acked(outbox)

    assert acked == ["a", "b"]  # in put order, the refused record's callback too
    dlq = producer.records("dlq")
    assert [v for _, v, _ in dlq[:2]] == [b"small-0", b"small-1"]  # one batch at first, then alone
    (key, value, headers), *_ = [r for r in dlq if r[1] is None]
    assert (key, value) == (b"org_1:lead_1", None)  # the copy: the key, headers, no value
    header = dict(headers)
    assert header["trace"] == b"t-1" and header["source.offset"] == b"7"
    assert header["error.code"] == b"record_too_large" and header["error.stage"] == b"produce"
    assert header["error.topic"] == b"dlq"
    assert [k for k, _ in headers].count("error.code") == 1
    assert b"event_too_large" in header["error.message"]  # the dead letter's own reason
    assert producer.values("status") == [b"s"]
    assert refused(metrics, "dlq", "record_too_large") == 1
    [line] = [
        r.getMessage() for r in caplog.records if "cannot be written to Kafka" in r.getMessage()
    ]
    assert "topic=dlq partition=1 key_bytes=12" in line and "MessageSizeTooLargeError" in line
    assert "x" * 20 not in caplog.text  # never the value


async def test_a_refused_copy_is_dropped_not_copied_again() -> None:
    producer = Broker(lambda topic, _items: kafka.MessageSizeTooLargeError())
    metrics = Metrics()
    outbox = outbox_for(producer, metrics)
    acked: list[int] = []
    await outbox.put([Outgoing("status", b"k", b"v", 0)], lambda: acked.append(1))
    await run_until_acked(outbox)
    assert acked == [1] and producer.sent == []
    assert producer.attempts == [("status", 1), ("dlq", 1)]  # the record, then its copy: no loop
    assert refused(metrics, "status", "record_too_large") == 1
    assert refused(metrics, "dlq", "record_too_large") == 1


async def test_an_unauthorized_topic_loses_its_records_and_nothing_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = Broker(unauthorized=frozenset({"status"}))
    metrics = Metrics()
    outbox = outbox_for(producer, metrics)
    writer = asyncio.create_task(outbox.run())
    acked: list[int] = []
    for i in range(3):  # three flushes
        batch = [Outgoing("status", b"k", b"s", 0), Outgoing("marks", b"k", b"m%d" % i, 0)]
        await outbox.put(batch, lambda i=i: acked.append(i))
        await asyncio.wait_for(outbox.barrier(), 5)
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    assert acked == [0, 1, 2] and outbox.failing_since is None
    assert producer.values("marks") == [b"m0", b"m1", b"m2"] and producer.values("status") == []
    assert producer.values("dlq") == []  # a whole topic refused: no copies
    assert refused(metrics, "status", "topic_unauthorized") == 3
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(lines) == 1  # one line a minute, not one per record
    assert "topic status" in lines[0] and "being lost" in lines[0]


async def test_a_batch_refused_for_its_topic_is_not_split() -> None:
    def verdict(topic: str, _items: Items) -> BaseException | None:
        return kafka.TopicAuthorizationFailedError(topic) if topic == "retry" else None

    producer = Broker(verdict)
    metrics = Metrics()
    outbox = outbox_for(producer, metrics)
    await outbox.put([Outgoing("retry", b"k", b"r%d" % i, 0) for i in range(5)])
    await outbox.put([Outgoing("status", b"k", b"s", 0)])
    await run_until_acked(outbox)
    assert [a for a in producer.attempts if a[0] == "retry"] == [("retry", 5)]
    assert refused(metrics, "retry", "topic_unauthorized") == 5
    assert producer.values("status") == [b"s"]


async def test_records_that_cannot_go_at_all_are_refused_before_sending() -> None:
    producer = Broker(hard=2_000)
    metrics = Metrics()
    outbox = outbox_for(producer, metrics, max_record_bytes=10_000)
    records = [
        Outgoing("status", b"k", b"a", 0),
        Outgoing("status", b"k", b"b" * 20_000, 0),  # over the outbox's limit
        Outgoing("status", b"k", b"c" * 3_000, 0),  # does not fit even an empty batch
        Outgoing("status", b"k", "not bytes", 0),  # type: ignore[arg-type]
        Outgoing("status", b"k", b"d", 0),
    ]
    acked: list[int] = []
    await outbox.put(records, lambda: acked.append(1))
    await run_until_acked(outbox)
    assert acked == [1]
    assert producer.values("status") == [b"a", b"d"]
    assert all(topic != "status" or n <= 2 for topic, n in producer.attempts)
    assert refused(metrics, "status", "record_too_large") == 2
    assert refused(metrics, "status", "unencodable") == 1
    assert len(producer.values("dlq")) == 3  # a copy of each


@pytest.mark.parametrize(
    "error", [kafka.KafkaTimeoutError(), kafka.UnknownError(), kafka.NotLeaderForPartitionError()]
)
async def test_transient_errors_are_retried_until_they_clear(error: BaseException) -> None:
    failures = [3]

    def verdict(_topic: str, _items: Items) -> BaseException | None:
        failures[0] -= 1
        return error if failures[0] >= 0 else None

    producer = Broker(verdict)
    metrics = Metrics()
    outbox = outbox_for(producer, metrics)
    await outbox.put([Outgoing("status", b"k", b"1", 0)])
    await run_until_acked(outbox)
    assert producer.values("status") == [b"1"] and len(producer.attempts) == 4
    assert outbox.failing_since is None
    assert all(refused(metrics, "status", reason) == 0 for reason in PRODUCE_REFUSALS)


async def test_a_failing_callback_does_not_stop_the_ones_after_it() -> None:
    outbox = outbox_for(Broker(), Metrics())

    def broken() -> None:
        raise RuntimeError("a caller's bug")

    acked: list[int] = []
    await outbox.put([Outgoing("status", b"k", b"1", 0)], broken)
    await outbox.put([Outgoing("status", b"k", b"2", 0)], lambda: acked.append(2))
    await run_until_acked(outbox)
    writer = asyncio.create_task(outbox.run())  # and later flushes still complete
    await outbox.put([Outgoing("status", b"k", b"3", 0)], lambda: acked.append(3))
    await asyncio.wait_for(outbox.barrier(), 5)
    writer.cancel()
    assert acked == [2, 3]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_liveness_fails_while_nothing_goes_through_and_recovers_when_it_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(outbox_module, "monotonic", clock)
    down = [True]
    producer = Broker(lambda _t, _i: kafka.KafkaConnectionError() if down[0] else None)
    outbox = outbox_for(producer, Metrics())
    settings = Settings(bootstrap_servers="unused:9092", broker_unavailable_exit_s=60)
    # Service.live on just what it reads (a whole Service opens Kafka clients).
    held = SimpleNamespace(outbox=outbox, forwarded=outbox, settings=settings, broken=None)
    live = functools.partial(Service.live, held)
    assert live() == (True, "ok")
    clock.now += 3_600
    assert live() == (True, "ok")  # idle is not stalled
    writer = asyncio.create_task(outbox.run())
    await outbox.put([Outgoing("status", b"k", b"1", 0)])
    await asyncio.sleep(0.3)  # a few failed attempts
    assert live() == (True, "ok") and outbox.failing_since is not None
    clock.now += 59
    assert live()[0]
    clock.now += 2
    ok, why = live()
    assert not ok and why.startswith("outbox stalled for 61s")
    clock.now += 600  # a broker that never comes back: unhealthy for good, so restarted
    assert not live()[0]
    down[0] = False  # back: the next flush completes, healthy at once
    await asyncio.wait_for(outbox.barrier(), 10)
    assert live() == (True, "ok") and outbox.failing_since is None
    await outbox.put([Outgoing("status", b"k", b"2", 0)])
    await asyncio.wait_for(outbox.barrier(), 5)
    assert live() == (True, "ok")
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
