"""The restorer without a broker: changelog records into a partition's store from
the offset the store recorded, tombstones, unreadable marks, and the `busy` flag."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from service.models import epoch_us
from service.pipeline import restore
from service.pipeline.restore import Restorer, mark_bytes
from service.pipeline.state import StateStores, decode
from service.settings import Settings

EVALUATED = "2026-03-01T10:00:00+00:00"


def mark(evaluation_id: str, written: bool = True, at: str = EVALUATED) -> bytes:
    body = {"evaluated_at": at, "evaluation_id": evaluation_id, "written": written}
    return orjson.dumps(body)


class FakeChangelog:
    """The changelog topic as a consumer sees it: fetches of (key, value) by offset."""

    def __init__(self, restorer: Restorer, topic: str, log: dict[int, list[Any]]) -> None:
        self.topic = topic
        self.log = log  # partition -> [(key, value)], offset = index
        self.at: dict[TopicPartition, int] = {}
        self.seeks: dict[TopicPartition, int] = {}
        self.restorer = restorer
        self.busy_seen = False
        self.unsubscribed = False

    def assign(self, tps: list[TopicPartition]) -> None:
        self.at = dict.fromkeys(tps, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.at[tp] = self.seeks[tp] = offset

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.log[tp.partition]) for tp in tps}

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        self.busy_seen |= self.restorer.busy
        out = {}
        for tp, start in self.at.items():
            rows = self.log[tp.partition][start : start + 2]  # small fetches
            if rows:
                out[tp] = [
                    SimpleNamespace(key=k, value=v, offset=start + i)
                    for i, (k, v) in enumerate(rows)
                ]
                self.at[tp] = start + len(rows)
        return out

    async def position(self, tp: TopicPartition) -> int:
        return self.at[tp]

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.log[tp.partition])

    def unsubscribe(self) -> None:
        self.unsubscribed = True


@pytest.fixture
def restorer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[dict[int, list[Any]]], tuple[Restorer, FakeChangelog]]:
    # No real consumer is built: an unstarted one would only warn when collected.
    monkeypatch.setattr(restore, "AIOKafkaConsumer", lambda **_: None)

    def make(log: dict[int, list[Any]]) -> tuple[Restorer, FakeChangelog]:
        settings = Settings(bootstrap_servers="unused:9092")
        r = Restorer(settings, StateStores(tmp_path, "group", settings.topic_watermarks))
        fake = FakeChangelog(r, settings.topic_watermarks, log)
        r.consumer = fake  # type: ignore[assignment]
        return r, fake

    return make


def test_a_changelog_value_becomes_the_stores_mark() -> None:
    at = epoch_us(datetime.fromisoformat(EVALUATED))
    assert decode(mark_bytes(mark("ev1"))) == (at, "ev1", True)
    assert decode(mark_bytes(mark("ev2", written=False))) == (at, "ev2", False)
    # Written before `written` existed: a mark of a write.
    assert decode(mark_bytes(orjson.dumps({"evaluated_at": EVALUATED})))[2] is True


async def test_a_partition_is_restored_to_its_end_with_tombstones_and_bad_marks(
    restorer: Any,
) -> None:
    log = {
        3: [
            (b"org:sf:a", mark("a1")),
            (b"org:sf:b", mark("b1")),
            (None, mark("keyless")),  # not ours: skipped
            (b"org:sf:a", mark("a2", at="2026-03-02T10:00:00+00:00")),
            (b"org:sf:b", None),  # tombstone: b forgotten
            (b"org:sf:c", b"{broken"),  # unreadable: skipped, the rest goes on
            (b"org:sf:d", mark("d1")),
        ]
    }
    r, fake = restorer(log)
    await r.restore({3})
    store = r.stores.open(3)
    a = store.get("org:sf:a")
    assert a is not None and a[1] == "a2"  # the last record of a key wins
    assert store.get("org:sf:b") is None and store.get("org:sf:c") is None
    assert store.get("org:sf:d") is not None
    assert store.offset == 7 and r.restored == 7
    assert fake.busy_seen and not r.busy and fake.unsubscribed


async def test_a_second_restore_starts_where_the_store_left_off(restorer: Any) -> None:
    log = {0: [(b"k1", mark("1")), (b"k2", mark("2"))]}
    r, fake = restorer(log)
    await r.restore({0})
    log[0].append((b"k3", mark("3")))
    await r.restore({0})
    assert fake.seeks[TopicPartition(r.topic, 0)] == 2  # not from the beginning again
    assert r.stores.open(0).get("k3") is not None and r.restored == 3


async def test_restoring_nothing_touches_nothing(restorer: Any) -> None:
    r, fake = restorer({})
    await r.restore(set())
    assert fake.at == {} and not fake.busy_seen and r.restored == 0
