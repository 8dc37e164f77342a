"""Batching, the per-base limiter and the 30-second penalty, against the sandbox.

Airtable allows 5 requests per second per base. Proving "no 429 and at least 90 %
of the ceiling" at 5/s would take 40 s for 2,000 events, so the sandbox and the
limiter are both set to a 20/s ceiling here (same code path, production default 5/s):
2,000 events, 200 requests, about 10 s.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from devkit.factories import DEFAULT_TARGETS, make_batch, make_config, make_event
from devkit.sandboxes.airtable import AirtableSandbox, Hit
from service.destinations.airtable import AirtableDestination
from service.destinations.http import new_session
from service.errors import RateLimited
from service.models import DeliveryState
from service.ratelimit import CompletionWindow, Handoffs
from service.tenancy import org_partition
from tests.unit.destinations.airtable.test_destination import opened

CREATE_OFF = [{**DEFAULT_TARGETS["airtable"][0], "create_if_missing": False}]


def events(n: int, prefix: str) -> list[dict[str, Any]]:
    return [make_event(lead_id=f"{prefix}{i}") for i in range(n)]


async def run_lane(
    dest: AirtableDestination,
    sandbox: AirtableSandbox,
    all_events: list[dict[str, Any]],
    targets: list[dict[str, Any]] | None = None,
    credentials: dict[str, Any] | None = None,
) -> list[DeliveryState]:
    """Batches of `max_batch_size`, one after the other, like a pipeline lane."""
    config = make_config("airtable", targets=targets or DEFAULT_TARGETS["airtable"])
    states = []
    for start in range(0, len(all_events), dest.max_batch_size):
        chunk = all_events[start : start + dest.max_batch_size]
        batch = make_batch(config, chunk, credentials or sandbox.credentials())
        states += [o.state for o in await dest.write(batch)]
    return states


def writes(hits: list[Hit]) -> list[Hit]:
    return [h for h in hits if h.method == "PATCH"]


async def test_1000_events_take_100_writes_and_10_lookups(tmp_path: Path) -> None:
    async with (
        AirtableSandbox(tmp_path, rate_limit=1000) as sandbox,
        opened(sandbox, requests_per_second=500, window_s=1.0) as dest,
    ):
        upserted = await run_lane(dest, sandbox, events(1000, "up"))
        assert upserted == [DeliveryState.DELIVERED] * 1000
        assert len(writes(sandbox.hits)) == 100
        assert all(h.records == 10 for h in sandbox.hits)

        sandbox.hits.clear()
        sandbox.seed("Contacts", [{"Email": f"seen{i}@example.com"} for i in range(1000)])
        looked_up = await run_lane(dest, sandbox, events(1000, "seen"), CREATE_OFF)
    assert looked_up == [DeliveryState.DELIVERED] * 1000
    assert len(writes(sandbox.hits)) == 100
    assert len(sandbox.calls("GET")) == 10  # one OR(...) formula per 100 values
    assert len(sandbox.table("Contacts")) == 2000


async def test_2000_events_no_429_and_over_90_percent_of_the_ceiling(tmp_path: Path) -> None:
    ceiling = 20
    async with (
        AirtableSandbox(tmp_path, rate_limit=ceiling) as sandbox,
        opened(sandbox, requests_per_second=ceiling) as dest,  # window_s: the default 1.0
    ):
        states = await run_lane(dest, sandbox, events(2000, "rate"))
    assert states == [DeliveryState.DELIVERED] * 2000
    assert sandbox.calls(status=429) == []
    sent = writes(sandbox.hits)
    assert len(sent) == 200
    # Sustained rate: the first window's requests go at once, the rest are paced.
    rate = (len(sent) - ceiling) / (sent[-1].at - sent[0].at)
    assert ceiling * 0.9 <= rate <= ceiling, f"{rate:.2f} requests/s"


async def provoke_penalty(sandbox: AirtableSandbox) -> None:
    """Another app on the same base spends its budget: 6 requests at once, one 429."""
    url = f"{sandbox.base_url}/v0/{sandbox.base_id}/Contacts"
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    async with new_session(sandbox.ca_file, 5.0) as session:

        async def one() -> int:
            async with session.get(url, headers=headers) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(one() for _ in range(6)))
    assert sorted(statuses) == [200] * 5 + [429]


async def test_a_429_blocks_its_base_for_the_penalty_and_no_other(tmp_path: Path) -> None:
    penalty = 2.0
    async with (
        AirtableSandbox(tmp_path, rate_limit=5, penalty_s=penalty) as sandbox,
        opened(sandbox, penalty_s=penalty) as dest,  # production pacing: 5/s
    ):
        await provoke_penalty(sandbox)
        batch = make_batch(make_config("airtable"), events(30, "p"), sandbox.credentials())
        with pytest.raises(RateLimited) as info:
            await dest.write(batch)
        assert penalty - 0.5 < info.value.retry_after <= penalty
        ours = len(sandbox.calls(status=429)) - 1  # the other app drew the first
        assert 1 <= ours <= 3  # only the batch's 3 requests that were already in flight

        sent_before = len(sandbox.hits)
        with pytest.raises(RateLimited) as again:  # nothing goes out into the penalty
            await dest.write(batch)
        assert len(sandbox.hits) == sent_before
        assert 0 < again.value.retry_after <= info.value.retry_after

        other = sandbox.credentials(base_id="appOtherBase00002")
        [outcome] = await dest.write(make_batch(make_config("airtable"), events(1, "o"), other))
        assert outcome.state is DeliveryState.DELIVERED  # another base is not held back
        assert len(sandbox.table("Contacts", base_id="appOtherBase00002")) == 1

        await asyncio.sleep(dest._pacers.get(sandbox.base_id).blocked_for)
        retried = await dest.write(batch)  # what the lane does after waiting retry_after
    assert [o.state for o in retried] == [DeliveryState.DELIVERED] * 30
    assert len(sandbox.calls(status=429)) == 1 + ours
    assert len(sandbox.table("Contacts")) == 30
    assert dest._metrics.rate_limited.labels("airtable")._value.get() == ours


async def test_retry_after_is_honoured_when_present(tmp_path: Path) -> None:
    async with (
        AirtableSandbox(tmp_path, rate_limit=1000) as sandbox,
        opened(sandbox, requests_per_second=500, window_s=1.0) as dest,
    ):
        sandbox.inject(429, "TOO_MANY_REQUESTS", headers={"Retry-After": "0.5"})
        batch = make_batch(make_config("airtable"), events(1, "ra"), sandbox.credentials())
        with pytest.raises(RateLimited) as info:
            await dest.write(batch)
        await asyncio.sleep(0.5)
        [outcome] = await dest.write(batch)
    assert info.value.retry_after == 0.5
    assert outcome.state is DeliveryState.DELIVERED


async def test_pacer_holds_a_slot_in_flight_and_one_window_after_the_answer() -> None:
    pacer = CompletionWindow(max_requests=2, window_s=0.2)
    loop = asyncio.get_running_loop()
    release = asyncio.Event()
    granted: list[float] = []

    async def request(hold: bool) -> None:
        async with pacer.slot():
            granted.append(loop.time())
            if hold:
                await release.wait()  # an answer that takes its time

    start = loop.time()
    first = asyncio.create_task(request(hold=True))
    second = asyncio.create_task(request(hold=True))
    third = asyncio.create_task(request(hold=False))
    await asyncio.sleep(0.4)
    assert len(granted) == 2  # both slots in flight: no window can free them
    release.set()
    answered = loop.time()
    await asyncio.gather(first, second, third)
    assert granted[2] - answered >= 0.2 - 0.01  # one window after the answers
    pacer.penalize(0.3)
    assert 0.25 < pacer.blocked_for <= 0.3
    await request(hold=False)
    assert loop.time() - start >= 0.4 + 0.2 + 0.3 - 0.05


async def test_a_new_owner_holds_a_base_until_the_old_owners_window_has_passed() -> None:
    """One owner at a time, each with the whole limit: the instance that takes a
    tenant over waits until the previous owner's last window is over, so the base
    never sees both owners' requests within one window."""
    window_s, org = 0.2, "org_moved"
    old, new = CompletionWindow(5, window_s), CompletionWindow(5, window_s)
    loop = asyncio.get_running_loop()
    granted: list[float] = []
    for _ in range(5):  # the old owner spends the whole limit, then lets go
        async with old.slot():
            granted.append(loop.time())
    handoffs = Handoffs()
    released = time.time()
    handoffs.took({org_partition(org, 12): released}, 12, set(range(12)))
    moved = org_partition(org, 12)
    kept = next(o for o in (f"org{i}" for i in range(99)) if org_partition(o, 12) != moved)
    assert handoffs.wait_s(kept, window_s) == 0.0  # a tenant of a partition it kept
    wait = handoffs.wait_s(org, window_s)
    assert 0.15 < wait <= window_s
    new.hold(wait)
    assert new.blocked_for == 0.0  # a hold is not a penalty: nothing is refused
    for _ in range(5):
        async with new.slot():
            granted.append(loop.time())
    busiest = max(sum(1 for t in granted if s <= t < s + window_s) for s in granted)
    assert busiest == 5  # never both owners' 5 within one window
    assert granted[5] - granted[4] >= window_s - 0.02
    handoffs.took({}, 12, set(range(12)))  # a second rebalance within the window:
    assert handoffs.wait_s(org, 10.0) > 0  # the hold of a partition it kept stays
    handoffs.took({}, 12, {moved + 1})  # handed on: its tenants are another's now
    assert handoffs.wait_s(org, 10.0) == 0.0
