"""State that scales and stays exact (issue 11), end to end with the real process,
the real broker and the Salesforce sandbox. Marked `load` (CI runs them after
`make test`)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from time import monotonic

import orjson
import pytest

from devkit.changelog import fill_watermarks
from devkit.factories import make_event
from devkit.fleet import Fleet, org_id
from service.tenancy import org_partition

pytestmark = pytest.mark.load
PARTITIONS = 6


async def test_kill_9_three_times_writes_each_pair_about_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    orgs, leads = 10, 1000
    async with Fleet(kafka_bootstrap, tmp_path, orgs=orgs, destinations=("salesforce",)) as f:
        events = [make_event(org_id(i % orgs), f"lead_{i % leads}") for i in range(5000)]

        async def stream() -> None:  # 5,000 events over about 60 s
            for start in range(0, 5000, 100):
                await f.produce(events[start : start + 100])
                await asyncio.sleep(1.2)

        streaming = asyncio.create_task(stream())
        # kill -9 at random points, 3-8 s after the service was last ready: a restart
        # takes ~20 s (the dead member's session expires first), so kills drawn over
        # the stream's time all fell in the instant after a restart.
        for _ in range(3):
            await asyncio.sleep(random.uniform(3, 8))
            assert not streaming.done(), "the stream ended before the kills"
            await f.kill_and_restart()
        await streaming
        await f.wait_terminal(5000, timeout=300)
        statuses = list(f.terminal.values())
        # In the CRM: delivered, or delivered before a crash and found so after it.
        delivered = sum(1 for s in statuses if s["status"] == "delivered")
        delivered += sum(1 for s in statuses if s["reason"] == "duplicate")
        written = sum(c.records for c in f.sf.calls if "/composite/sobjects" in c.path)
        evaluations = {(w.record_id, w.values["TS_Evaluated_At__c"]) for w in f.sf.writes}
        newest: dict[str, str] = {}
        for e in events:
            key = e["lead"]["email"]
            newest[key] = max(newest.get(key, ""), e["evaluation"]["evaluated_at"])
        stored = {r["Email"]: r["TS_Evaluated_At__c"] for r in f.sf.records("Lead").values()}
        reasons = {s["reason"] for s in statuses if s["status"] == "skipped"}
        print(
            f"\nkill -9 x3: {written} CRM record writes for {delivered} delivered pairs "
            f"({written / delivered:.3f} per pair); {len(f.sf.writes) - len(evaluations)} "
            f"evaluations written twice; every terminal status: {dict(f.every)}"
        )
        assert {s["status"] for s in statuses} <= {"delivered", "skipped"}
        assert reasons <= {"stale_evaluation", "duplicate"}
        assert written / delivered <= 1.1
        assert len(f.sf.writes) / len(evaluations) <= 1.1
        assert {k: v[:19] for k, v in stored.items()} == {k: v[:19] for k, v in newest.items()}


async def test_a_million_watermarks_restore_in_bounded_memory(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    fleet = Fleet(kafka_bootstrap, tmp_path, orgs=1, destinations=("salesforce",))
    topic = fleet.env["TOPIC_WATERMARKS"] + ".by-org"  # the changelog (service/pipeline/layout.py)
    stale = make_event(org_id(0), "lead_stale", evaluated_at="2026-11-01T00:00:00Z")
    dup = make_event(org_id(0), "lead_dup", evaluated_at="2026-11-20T00:00:00Z")
    held = {  # newer than the stale one; the very evaluation of the duplicate
        "lead_stale": ("2026-11-10T00:00:00Z", "eval_newer"),
        "lead_dup": ("2026-11-20T00:00:00Z", dup["evaluation"]["evaluation_id"]),
    }
    extra = [
        (
            f"{org_id(0)}:salesforce:{lead}".encode(),
            orjson.dumps({"evaluated_at": at, "evaluation_id": evaluation}),
            org_partition(org_id(0), PARTITIONS),
        )
        for lead, (at, evaluation) in held.items()
    ]
    started = monotonic()
    await fill_watermarks(kafka_bootstrap, topic, 1_000_000, PARTITIONS, extra)
    print(f"\n1,000,000 watermarks produced in {monotonic() - started:.0f}s")
    async with fleet as f:  # ready: the assigned partitions' stores are restored
        await f.produce([stale, dup])
        await f.wait_terminal(2, timeout=60)
        rss = f.peak_rss_mb()
        reasons = {s["lead_id"]: s["reason"] for s in f.terminal.values()}
        restores = [line for line in f.log.read_text().splitlines() if "restored watermark" in line]
        print(f"ready with 1 M entries; peak RSS {rss:.0f} MB; {reasons}\n{restores}")
        assert reasons == {"lead_stale": "stale_evaluation", "lead_dup": "duplicate"}
        assert not [c for c in f.sf.calls if "/composite/sobjects" in c.path]
        assert rss < 250
        assert restores


async def test_two_instances_a_third_joining_then_one_killed_write_each_lead_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """One owner at a time: instances write Salesforce with tokens of their own, so
    the sandbox tells which instance wrote which record with which evaluation."""
    orgs, leads, n = 10, 600, 6000
    async with Fleet(kafka_bootstrap, tmp_path, orgs=orgs, destinations=("salesforce",)) as f:
        await f.add_instance()
        events = [make_event(org_id(i % leads % orgs), f"lead_{i % leads}") for i in range(n)]

        async def stream() -> None:  # 6,000 events over about 30 s
            for start in range(0, n, 100):
                await f.produce(events[start : start + 100])
                await asyncio.sleep(0.5)

        streaming = asyncio.create_task(stream())
        await asyncio.sleep(8)
        joined_at = monotonic()
        await f.add_instance()  # a rebalance: i0 and i1 hand partitions to i2
        await asyncio.sleep(5)
        killed_at = monotonic()
        await f.instances[1].kill()  # kill -9: its partitions move after the session timeout
        await streaming
        await f.wait_terminal(n, timeout=300)
        statuses = list(f.terminal.values())
        writer: dict[tuple[str, str], set[str]] = {}  # (record, evaluated_at) -> instances
        runs: dict[str, list[str]] = {}  # record -> its writers in time order, runs merged
        for w in sorted(f.sf.writes, key=lambda w: w.at):
            instance = w.token.rsplit("-", 1)[1]
            writer.setdefault((w.record_id, w.values["TS_Evaluated_At__c"]), set()).add(instance)
            seq = runs.setdefault(w.record_id, [])
            if not seq or seq[-1] != instance:
                seq.append(instance)
        twice = [k for k, who in writer.items() if len(who) > 1]
        after_crash = [k for k in twice if "i1" in writer[k]]
        newest: dict[str, str] = {}
        for e in events:
            key = e["lead"]["email"]
            newest[key] = max(newest.get(key, ""), e["evaluation"]["evaluated_at"])
        stored = {r["Email"]: r["TS_Evaluated_At__c"] for r in f.sf.records("Lead").values()}
        delivered = sum(1 for s in statuses if s["status"] == "delivered")
        print(
            f"\n3 instances (join at {joined_at - f.started:.0f}s, kill -9 at "
            f"{killed_at - f.started:.0f}s): {len(f.sf.writes)} record writes for {delivered} "
            f"delivered pairs; evaluations written by two instances: {len(twice)} "
            f"({len(after_crash)} re-written after the kill -9); writers per record: "
            f"{Counter(len(r) for r in runs.values())}; every terminal status: {dict(f.every)}"
        )
        assert len(statuses) == n
        assert {s["status"] for s in statuses} <= {"delivered", "skipped"}
        assert {k: v[:19] for k, v in stored.items()} == {k: v[:19] for k, v in newest.items()}
        assert len(stored) == leads  # no lead created twice by two owners
        assert twice == after_crash  # only what the killed instance wrote but never acked
        assert len(after_crash) <= 0.02 * delivered
        assert max(len(r) for r in runs.values()) <= 3  # owners change only at the 2 rebalances
        assert len(f.sf.writes) / delivered <= 1.1


async def test_a_rebalance_waits_for_a_12_s_drain_and_nothing_is_written_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A rebalance while writes take 12 s: the old owner drains them (longer than
    the 10 s session timeout) and still commits, so the new owner writes nothing
    again. Kafka's coordinator waits that long only if asked to (the consumer's
    rebalance timeout; Tansu waited either way)."""
    async with Fleet(kafka_bootstrap, tmp_path, orgs=10, destinations=("salesforce",)) as f:
        f.sf.latency_s = 12.0
        events = [make_event(org_id(i % 10), f"lead_{i}") for i in range(60)]
        await f.produce(events)
        await asyncio.sleep(3)  # the first writes are in flight
        await f.add_instance()  # a rebalance: i0 hands everything back, then rejoins
        await f.wait_terminal(60, timeout=120)
        evaluations = Counter((w.record_id, w.values["TS_Evaluated_At__c"]) for w in f.sf.writes)
        handed = [line for line in f.instances[0].log_lines("info") if "handed back" in line]
        print(f"\n{sum(evaluations.values())} writes of {len(evaluations)} evaluations; {handed}")
        assert len(evaluations) == 60 and max(evaluations.values()) == 1
        assert not [line for line in f.log_lines("warning") if "commit failed" in line]
