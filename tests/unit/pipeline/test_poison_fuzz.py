"""Issue 19: no record, answer or revoke can raise out of a record's path, and every
delivery settles exactly once (hypothesis, no broker).

The real Router, Lanes, Deliverer and Settler run over generated events (extreme
dates, huge numbers, unicode, nulls, big fields, broken JSON) and a destination
that answers each write with a generated behaviour: good outcomes, the wrong
number of them, a 5xx, a 429 with an absurd Retry-After, a bug (TypeError), a
hang; partitions are revoked at random points. At the end:
- no exception escaped and no lane crashed;
- no Job was counted down past zero (a delivery settled twice);
- each (event, destination) of a partition still held ended in exactly one
  terminal status or one delay-tier record; each invalid event in the DLQ;
- the in-flight budget (open offsets and bytes) is back to zero.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.factories import make_config
from service.config.store import ConfigStore
from service.destinations.base import Batch, Outcome
from service.errors import InvalidEvent, RateLimited, TransientError
from service.metrics import Metrics
from service.models import DeliveryState, RecordRef
from service.pipeline.circuit import Circuits
from service.pipeline.decode import decode_event
from service.pipeline.deliver import Deliverer
from service.pipeline.lanes import Lanes
from service.pipeline.offsets import OffsetTracker
from service.pipeline.router import Router
from service.pipeline.settle import Settler
from service.pipeline.state import StateStores
from service.pipeline.tiers import TierGate, TierRecord
from service.pipeline.watermarks import Watermarks
from service.pipeline.work import Job
from service.secrets import SecretStore
from service.settings import Settings
from tests.fakes import ListQueue

TOPIC = "trailspark.evaluations.completed"
ORGS = ("org_1", "org_2")
DESTINATIONS = ("salesforce", "hubspot")

# Valid RFC 3339 instants, the extremes included (year 1 and 9999, any offset).
instants = st.builds(
    lambda y, mo, d, h, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:30:00{off}",
    st.sampled_from([1, 2, 1970, 2026, 9998, 9999]),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.sampled_from(["Z", "+00:00", "-01:00", "+14:00", "-23:59", ".999999Z"]),
)
texts = st.text(max_size=40) | st.just("x" * 5_000) | st.just("\u2603\U0001f600\u0000")
maybe_text = st.none() | texts
raw_numbers = st.sampled_from(["1e400", "-1e400", "123456789012345678901234567890", "0.1"])


@st.composite
def event_bytes(draw: Any) -> bytes:
    """An evaluation as JSON text: mostly valid, sometimes broken in one place."""
    lead = {
        "lead_id": draw(st.sampled_from(["lead_a", "lead_b", "lead_c", "\u00e9\u00e8"])),
        "email": draw(maybe_text),
        "first_name": draw(maybe_text),
        "company": draw(maybe_text),
        "domain": draw(maybe_text),
        "crm_ids": draw(st.sampled_from([{}, {"salesforce": {"Lead": "00Q1"}}, {"x": {}}])),
    }
    event = {
        "schema_version": draw(st.sampled_from([1, 1, 1, 2])),
        "event_id": draw(st.uuids()).hex,
        "occurred_at": draw(instants),
        "org_id": draw(st.sampled_from(ORGS)),
        "lead": lead,
        "evaluation": {
            "evaluation_id": draw(st.sampled_from(["e1", "e2", "e3"])),
            "score": draw(st.sampled_from(["hot", "warm", "cold", "lukewarm"])),
            "reasoning": draw(texts),
            "evaluated_at": draw(instants),
            "trigger": "batch",
            "propensity": draw(st.sampled_from([None, "high", "low"])),
        },
    }
    raw = orjson.dumps(event)
    # A field the schema ignores, holding a number orjson cannot read back.
    raw = raw[:-1] + b',"ignored":' + draw(raw_numbers).encode() + b"}"
    return draw(st.sampled_from([raw, raw, raw, raw[:-3], b"null", b"[]", b"\xff\xfe"]))


# What the destination does with a write: answer well, badly, not at all.
BEHAVIOURS = ("ok", "ok", "short", "5xx", "429", "429_absurd", "bug", "slow", "retrying")


class ScriptedDestination:
    def __init__(self, name: str, plan: list[str]) -> None:
        self.name = name
        self.max_batch_size = 3
        self.plan = plan
        self.calls = 0

    async def setup(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, batch: Batch) -> list[Outcome]:
        what = self.plan[self.calls % len(self.plan)]
        self.calls += 1
        await asyncio.sleep(0)
        n = len(batch.items)
        if what == "short":
            return [Outcome.delivered([]) for _ in range(n - 1)]
        if what == "5xx":
            raise TransientError("503", code="server_error", http_status=503)
        if what == "429":
            raise RateLimited("429", retry_after=0.01)
        if what == "429_absurd":
            raise RateLimited("429", retry_after=math.inf)
        if what == "bug":
            raise TypeError("'NoneType' object is not subscriptable")
        if what == "slow":  # outlasts a revoke's drain: abandoned
            await asyncio.sleep(0.2)
        if what == "retrying":
            return [Outcome(DeliveryState.RETRYING, retry_after=1e12) for _ in range(n)]
        return [Outcome.delivered([RecordRef(object="Lead", id="1", action="updated")])] * n


async def run_pipeline(raws: list[bytes], plans: dict[str, list[str]], revoke_at: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    for org in ORGS:
        for name in DESTINATIONS:
            (tmp / f"{org}-{name}.json").write_text('{"access_token": "t", "api_key": "k"}')
    settings_ = Settings(bootstrap_servers="unused:9092", max_attempts=3)
    metrics = Metrics()
    store = ConfigStore(metrics)
    for org in ORGS:
        for name in DESTINATIONS:
            store.apply_object(make_config(name, org))
    sink = ListQueue()
    stores = StateStores(tmp / "state", "g", "marks")
    for p in (0, 1):
        stores.open(p)
    marks = Watermarks(stores)
    settler = Settler(settings_, metrics, sink, marks)
    deliverer = Deliverer(metrics, SecretStore(tmp), marks, settler)
    destinations = {n: ScriptedDestination(n, plans[n]) for n in DESTINATIONS}
    lanes = Lanes(
        destinations,  # type: ignore[arg-type]
        Circuits(metrics, list(DESTINATIONS)),
        deliverer,
        settler.defer,
        metrics,
        capacity=50,
        linger_s=0.001,
    )
    offsets = OffsetTracker()
    router = Router(
        settings_, metrics, store, lanes, settler, sink, offsets, TierGate(settings_.topic_retry)
    )  # type: ignore[arg-type]
    revoked: set[TopicPartition] = set()
    try:
        for i, raw in enumerate(raws):
            tp = TopicPartition(TOPIC, i % 2)
            if tp in revoked:  # no longer ours: the consumer fetches nothing more of it
                continue
            record = SimpleNamespace(
                topic=TOPIC, partition=tp.partition, offset=i, key=b"k", value=raw, headers=()
            )
            await router.on_records(tp, [record])  # type: ignore[list-item]
            if i == revoke_at:  # a rebalance takes partition 1 away mid-stream
                revoked = {TopicPartition(TOPIC, 1)}
                await lanes.drain(revoked, 0.05)
                offsets.forget(revoked)
        for _ in range(1000):  # until every lane is idle
            if not lanes.pending:
                break
            await asyncio.sleep(0.01)
        assert not lanes.pending and lanes.restarts == 0  # no lane worker ever crashed
    finally:
        await lanes.stop()
        stores.close({0, 1})
    check_accounting(raws, sink, offsets, revoked, lanes)


def check_accounting(
    raws: list[bytes], sink: ListQueue, offsets: OffsetTracker, revoked: set[Any], lanes: Any
) -> None:
    ended: Counter[tuple[str, str]] = Counter()
    for value in sink.values(".status"):
        if value["status"] != "retrying":  # progress only
            ended[(value["event_id"], value["destination"])] += 1
    for delayed in sink.delayed():
        ended[(decode_event(delayed.event, 10**8).event_id, delayed.destination)] += 1
    dead = {r.offset for r in (_offset(x) for x in sink.records) if r is not None}
    for offset, raw in enumerate(raws):
        partition = offset % 2
        try:
            event = decode_event(raw, Settings(bootstrap_servers="x:1").max_event_bytes)
        except InvalidEvent:
            if TopicPartition(TOPIC, partition) not in revoked:
                assert offset in dead, f"invalid event at offset {offset} not in the DLQ"
            continue
        for name in DESTINATIONS:
            n = ended[(event.event_id, name)]
            if TopicPartition(TOPIC, partition) in revoked:
                assert n <= 1  # dropped or abandoned work is the next owner's
            else:
                assert n == 1, f"offset {offset} to {name}: {n} endings"
    # Everything still held is settled: no budget is left open, and none leaked.
    assert offsets.pending() == 0 and offsets.open_bytes == 0


def _offset(record: Any) -> Any:
    if not record.topic.endswith(".dlq"):
        return None
    headers = dict(record.headers)
    return SimpleNamespace(offset=int(headers["source.offset"]))


@pytest.fixture(autouse=True)
def never_below_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Job counted down past zero means a delivery settled twice."""
    original = Job.delivery_settled

    def delivery_settled(self: Job) -> None:
        assert self.remaining > 0, f"job at offset {self.offset} counted down twice"
        original(self)

    monkeypatch.setattr(Job, "delivery_settled", delivery_settled)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    raws=st.lists(event_bytes(), min_size=1, max_size=12),
    sf=st.lists(st.sampled_from(BEHAVIOURS), min_size=1, max_size=6),
    hs=st.lists(st.sampled_from(BEHAVIOURS), min_size=1, max_size=6),
    revoke_at=st.integers(-1, 12),
)
def test_no_record_or_answer_escapes_and_each_delivery_settles_once(
    raws: list[bytes], sf: list[str], hs: list[str], revoke_at: int
) -> None:
    asyncio.run(run_pipeline(raws, {"salesforce": sf, "hubspot": hs}, revoke_at))


@settings(max_examples=100, deadline=None)
@given(raw=event_bytes(), attempt=st.integers(1, 10**6), wait=st.floats(allow_nan=True))
def test_a_tier_record_carries_the_original_bytes_and_reads_back(
    raw: bytes, attempt: int, wait: float
) -> None:
    from datetime import UTC, datetime, timedelta

    from service.pipeline.tiers import due_at

    now = datetime.now(UTC)
    record = TierRecord("hubspot", attempt, due_at(now, wait), now, None, raw)
    back = TierRecord.read(raw, record.headers())
    assert back.event is raw and back.attempt == attempt  # the original bytes, as they came
    assert now - timedelta(milliseconds=1) <= back.not_before <= now + timedelta(hours=1)
