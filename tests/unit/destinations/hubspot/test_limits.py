"""Rate limits, quotas and failed batches against the HTTPS sandbox.

Windows are shortened for speed: sandbox and destination get the same smaller
budget (10 requests per 2 s instead of 190 per 10 s); the property under test,
spending the window without a 429, does not depend on its size.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from devkit.factories import make_event
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.budget import limit_body
from devkit.sandboxes.hubspot.testing import batch, destination, hubspot_config
from service.destinations.base import account_of
from service.errors import QuotaExhausted, RateLimited

BUDGET = {"max_requests": 10, "window_s": 2.0}


def utilisation(hs: HubSpotSandbox, path_end: str, max_requests: int, window_s: float) -> float:
    """Records written over the record capacity of the windows the run spanned
    (max_requests x 100 records per window; the first window starts at the first call)."""
    calls = [c for c in hs.calls if c.path.endswith(path_end)]
    span = calls[-1].at - calls[0].at
    capacity = max_requests * 100 * (span + window_s) / window_s
    return sum(c.inputs for c in calls) / capacity


async def test_3000_events_spend_the_window_without_a_429(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path, **BUDGET) as hs:
        dest = destination(hs, **BUDGET)
        events = [make_event() for _ in range(3000)]
        config = hubspot_config(propensity=False)
        try:
            for start in range(0, 3000, dest.max_batch_size):  # as the lane hands them over
                out = await dest.write(batch(hs, config, events[start : start + 1000]))
                assert {o.state for o in out} == {"delivered"}
        finally:
            await dest.close()
        assert sum(hs.budget.rejected.values()) == 0
        assert all(c.status == 200 for c in hs.calls) and len(hs.calls) == 30
        assert utilisation(hs, "/batch/upsert", **BUDGET) >= 0.9
        assert len(hs.records("contacts")) == 3000


async def test_search_keeps_to_4_per_second(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path, search_per_s=4) as hs:
        dest = destination(hs)  # production defaults: 190 / 10 s, search 4 / s
        events = [make_event(domain=f"d{n}.example") for n in range(900)]
        try:
            out = await dest.write(batch(hs, hubspot_config(), events))
        finally:
            await dest.close()
        searches = [c.at for c in hs.calls if c.path.endswith("/search")]
        assert len(searches) == 9 and sum(hs.budget.rejected.values()) == 0
        assert all(b - a >= 1.0 for a, b in zip(searches, searches[4:], strict=False))
        assert all(b - a >= 0.2 for a, b in itertools.pairwise(searches))  # spaced
        assert {o.state for o in out} == {"delivered"}  # contacts written, propensity missed


async def test_a_stricter_account_limit_is_learnt_from_the_headers(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path, max_requests=3, window_s=10) as hs:
        dest = destination(hs)  # believes 190 / 10 s
        events = [make_event() for _ in range(1000)]
        try:
            work = batch(hs, hubspot_config(propensity=False), events)
            with pytest.raises(RateLimited) as caught:
                await dest.write(work)
            assert caught.value.retry_after == 10.0  # the rolling interval, from the headers
            limits = dest.limits_for(account_of(work.config))
            assert (limits.general.max_requests, limits.general.window_s) == (3, 10.0)
        finally:
            await dest.close()
        assert hs.budget.rejected["TEN_SECONDLY_ROLLING"] >= 1


async def test_daily_quota_blocks_the_token_without_burning_requests(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path) as hs:
        dest = destination(hs, daily_retry_s=0.3)
        config = hubspot_config(propensity=False)
        hs.inject(429, limit_body("DAILY"), path="/batch/upsert")
        try:
            with pytest.raises(QuotaExhausted) as caught:
                await dest.write(batch(hs, config, [make_event()]))
            assert caught.value.code == "quota_exhausted" and caught.value.retry_after == 0.3
            calls = len(hs.calls)
            for _ in range(3):  # retries while blocked never reach HubSpot
                with pytest.raises(QuotaExhausted):
                    await dest.write(batch(hs, config, [make_event()]))
            assert len(hs.calls) == calls
            await asyncio.sleep(0.35)  # the reset: the next probe goes through
            (out,) = await dest.write(batch(hs, config, [make_event()]))
            assert out.state == "delivered"
        finally:
            await dest.close()


async def test_daily_remaining_zero_stops_before_the_429(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path, daily_limit=2) as hs:
        dest = destination(hs, daily_retry_s=30)
        config = hubspot_config(propensity=False)
        try:
            for _ in range(2):
                (out,) = await dest.write(batch(hs, config, [make_event()]))
                assert out.state == "delivered"
            with pytest.raises(QuotaExhausted):
                await dest.write(batch(hs, config, [make_event()]))
        finally:
            await dest.close()
        assert len(hs.calls) == 2 and hs.budget.rejected["DAILY"] == 0


async def test_a_refused_batch_is_split_to_isolate_the_bad_record(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path) as hs:
        ids = [hs.seed("contacts", email=f"c{n}@example.com") for n in range(16)]
        hs.store.reject = lambda obj, props: (
            ("INVALID_OPTION", "poison was not one of the allowed options")
            if props.get("ts_reasoning") == "poison"
            else None
        )
        events = [
            make_event(
                crm_ids={"hubspot": {"contacts": cid}}, reasoning="poison" if n == 5 else "ok"
            )
            for n, cid in enumerate(ids)
        ]
        dest = destination(hs)
        try:
            out = await dest.write(batch(hs, hubspot_config(propensity=False), events))
        finally:
            await dest.close()
        bad = out.pop(5)
        assert bad.state == "failed" and bad.error.code == "invalid_option"
        assert not bad.error.retryable and "poison" in bad.error.message
        assert {o.state for o in out} == {"delivered"}
        assert hs.count("/contacts/batch/update") <= 9  # 1 + 2 per halving (16, 8, 4, 2)
        written = [r for r in hs.records("contacts") if r.properties.get("ts_reasoning") == "ok"]
        assert len(written) == 15


async def test_an_unknown_property_fails_its_inputs_at_once(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path) as hs:
        config = hubspot_config(contacts={"fields": {"score": "ts_not_created"}}, propensity=False)
        dest = destination(hs)
        try:
            out = await dest.write(batch(hs, config, [make_event() for _ in range(50)]))
        finally:
            await dest.close()
        assert {(o.state, o.error.code) for o in out} == {("failed", "property_doesnt_exist")}
        assert "ts_not_created" in out[0].error.message
        assert len(hs.calls) == 1 and not hs.records("contacts")  # no splitting, nothing written


async def test_multi_status_create_fails_only_the_bad_inputs(tmp_path: Path) -> None:
    async with HubSpotSandbox(tmp_path) as hs:
        hs.store.reject = lambda obj, props: (
            ("INVALID_OPTION", "refused") if props.get("name") == "Poison Ltd" else None
        )
        companies = {
            "object": "companies",
            "match": {"crm_field": "domain", "event_field": "lead.domain"},
            "fields": {"score": "ts_score"},
            "create_if_missing": True,
        }
        events = [
            make_event(domain="a.example", company="A Ltd"),
            make_event(domain="p.example", company="Poison Ltd"),
            make_event(domain="b.example", company="B Ltd"),
        ]
        dest = destination(hs)
        try:
            out = await dest.write(batch(hs, hubspot_config(targets=[companies]), events))
        finally:
            await dest.close()
        assert [o.state for o in out] == ["delivered", "failed", "delivered"]
        assert out[1].error.http_status == 400 and out[1].error.code == "invalid_option"
        assert hs.count("/companies/batch/create", status=207) == 1
        assert sorted(r.properties["name"] for r in hs.records("companies")) == ["A Ltd", "B Ltd"]
