"""Many tenants, slow and failing destinations (issue 10), end to end: the real
process, the real broker, the HTTPS sandboxes, default settings. Marked `load`:
`make test-load` runs them (CI runs them after `make test`)."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from time import monotonic

import pytest

from devkit.factories import make_event
from devkit.fleet import Fleet, org_id

pytestmark = pytest.mark.load


def events_for(orgs: int, n: int) -> list[dict[str, object]]:
    return [make_event(org_id(i % orgs)) for i in range(n)]


async def test_100_orgs_20000_events_every_pair_terminal(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with Fleet(kafka_bootstrap, tmp_path, orgs=100) as f:
        started = monotonic()
        await f.produce(events_for(100, 20_000))
        await f.wait_terminal(60_000, timeout=600)
        took = monotonic() - started
        rss = f.peak_rss_mb()
        print(
            f"\n100 orgs: 20,000 events in {took:.1f}s = {20_000 / took:.0f} ev/s, RSS {rss:.0f} MB"
        )
        assert {s["status"] for s in f.terminal.values()} == {"delivered"}
        assert f.log_lines("error") == []


async def test_1000_orgs_5000_events_bounded_memory(kafka_bootstrap: str, tmp_path: Path) -> None:
    async with Fleet(kafka_bootstrap, tmp_path, orgs=1000) as f:
        started = monotonic()
        await f.produce(events_for(1000, 5_000))
        await f.wait_terminal(15_000, timeout=600)
        took = monotonic() - started
        rss = f.peak_rss_mb()
        print(
            f"\n1,000 orgs: 5,000 events in {took:.1f}s = {5_000 / took:.0f} ev/s, RSS {rss:.0f} MB"
        )
        assert {s["status"] for s in f.terminal.values()} == {"delivered"}
        assert f.log_lines("error") == []
        assert rss < 250


async def test_a_rate_limited_airtable_holds_back_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """One org's burst; Airtable at its real 5 requests/s per base."""
    async with Fleet(kafka_bootstrap, tmp_path, orgs=1, airtable_rate=5) as f:
        await f.produce(events_for(1, 15_000))
        burst_end = monotonic()
        await f.wait_terminal(15_000, timeout=120, destination="salesforce")
        await f.wait_terminal(15_000, timeout=120, destination="hubspot")
        fast = max(t for (_, d), t in f.arrived.items() if d != "airtable") - burst_end
        await asyncio.sleep(max(0.0, 75 - (monotonic() - burst_end)))
        hits = [h for h in f.at.hits if h.path.startswith("/v0/")]
        window = [h for h in hits if burst_end + 15 <= h.at < burst_end + 75]
        rate = len(window) / 60
        rejected = sum(1 for h in hits if h.status == 429)
        print(
            f"\nSF+HS done {fast:.1f}s after the burst; Airtable {rate:.2f} req/s, {rejected} 429s"
        )
        assert fast <= 30
        assert rate >= 0.9 * 5 and rejected == 0
        assert f.log_lines("error") == []


async def test_a_down_destination_of_a_big_org_does_not_delay_a_small_org(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with Fleet(kafka_bootstrap, tmp_path, orgs=2, own_hubspot=1) as f:
        f.hs_own.inject(503, path="/crm/v3/", times=10**9)  # org0000's HubSpot is down
        await f.produce(events_for(1, 25_000))
        small: set[str] = set()
        for _ in range(60):  # org0001: 20 events a second for a minute
            sent = monotonic()
            batch = [make_event(org_id(1)) for _ in range(20)]
            small |= {str(e["event_id"]) for e in batch}
            await f.produce(batch)
            await asyncio.sleep(max(0.0, 1 - (monotonic() - sent)))
        await f.wait_terminal(3_600, timeout=60, among=small)
        lags = sorted(f.arrived[(e, d)] - f.sent_at[e] for (e, d) in f.terminal if e in small)
        p95 = lags[int(0.95 * len(lags))]
        print(
            f"\nsmall org: p50 {statistics.median(lags):.2f}s p95 {p95:.2f}s over {len(lags)} pairs"
        )
        assert p95 < 2.0
        assert {s["status"] for (e, _), s in f.terminal.items() if e in small} == {"delivered"}


async def test_a_five_minute_outage_ends_delivered_and_is_probed_not_hammered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with Fleet(kafka_bootstrap, tmp_path, orgs=1) as f:
        f.hs.inject(503, path="/crm/v3/", times=10**9)
        down_at = monotonic()
        await f.produce(events_for(1, 200))
        await f.wait_terminal(200, timeout=60, destination="salesforce")
        await asyncio.sleep(max(0.0, 300 - (monotonic() - down_at)))
        calls = [c for c in f.hs.calls if c.path.startswith("/crm/")]
        late = [c for c in calls if c.at >= down_at + 60]  # the circuit is long open by then
        per_minute = len(late) / ((monotonic() - down_at - 60) / 60)
        f.hs._faults.clear()  # HubSpot is back
        await f.wait_terminal(200, timeout=240, destination="hubspot")
        hubspot = [s for (_, d), s in f.terminal.items() if d == "hubspot"]
        print(f"\noutage: {len(calls)} requests in 5 min, {per_minute:.1f}/min while open")
        assert {s["status"] for s in hubspot} == {"delivered"}
        assert per_minute <= 6
        assert f.log_lines("error") == []


async def test_a_200000_event_backlog_stays_in_kafka(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Only a slow Airtable is active: the backlog is deferred to Kafka, not held."""
    async with Fleet(
        kafka_bootstrap, tmp_path, orgs=1, destinations=("airtable",), airtable_rate=5
    ) as f:
        await f.produce(events_for(1, 200_000))
        deadline = monotonic() + 600
        while (
            await f.metric("consumer_lag") > 0 or await f.metric("events_consumed_total") < 200_000
        ):
            assert monotonic() < deadline, "backlog not consumed"
            await asyncio.sleep(1)
        rss = f.peak_rss_mb()
        deferred = await f.metric("deferrals_total", destination="airtable")
        print(f"\n200,000 events: peak RSS {rss:.0f} MB, {deferred:.0f} deferred to the tiers")
        assert rss < 250
        assert deferred > 150_000
        assert f.log_lines("error") == []
