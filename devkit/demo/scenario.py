"""What the demo sends: a steady flow for one org, and scenes that show what the
service survives, each announced in the feed with a `»` line."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from devkit.demo.data import ACME_LEADS, LEADS, REASONS, burst_leads
from devkit.demo.feed import say
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.budget import limit_body

ORG = "org_demo"  # salesforce, hubspot, airtable
ACME = "org_acme"  # hubspot, airtable
BURST = 40
RATE_LIMIT_WAIT_S = 3
OBJECTS = "/crm/v3/objects/"  # HubSpot's record calls (the outage's target)
OPENED = f"circuit opened for hubspot ({ORG}-hubspot)"
CLOSED = f"circuit closed for hubspot ({ORG}-hubspot)"
# Bounds, not timings: the scene moves on as soon as the service shows each step.
OPEN_WAIT_S, PROBE_WAIT_S, CLOSE_WAIT_S = 60, 30, 90


def rfc3339(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_for(org: str, lead: dict[str, str], evaluated_at: datetime | None = None) -> bytes:
    now = datetime.now(UTC)
    return orjson.dumps(
        {
            "schema_version": 1,
            "event_id": str(uuid.uuid4()),
            "occurred_at": rfc3339(now),
            "org_id": org,
            "lead": lead,
            "evaluation": {
                "evaluation_id": f"eval_{uuid.uuid4().hex[:8]}",
                "score": random.choice(["hot", "warm", "cold"]),
                "reasoning": random.choice(REASONS),
                "evaluated_at": rfc3339(evaluated_at or now),
                "trigger": random.choice(["batch", "re_evaluation", "manual"]),
                "propensity": random.choice(["high", "medium", "low"]),
            },
        }
    )


class Scenario:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        hubspot: HubSpotSandbox,
        stop: asyncio.Event,
        log_lines: list[str],
    ) -> None:
        self.producer = producer
        self.log_lines = log_lines  # the service's lines the feed showed, as they come
        self.topic = topic
        self.hubspot = hubspot
        self.stop = stop
        self.played = asyncio.Event()

    async def send(self, org: str, lead: dict[str, str], **kw: Any) -> None:
        key = f"{org}:{lead['lead_id']}".encode()
        await self.producer.send_and_wait(self.topic, event_for(org, lead, **kw), key)

    async def pause(self, seconds: float) -> bool:
        """True when the demo is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    async def steady(self, every_s: float) -> None:
        while not self.stop.is_set():
            await self.send(ORG, random.choice(LEADS))
            await self.pause(every_s)

    async def scenes(self, gap_s: float) -> None:
        scenes = (self.second_org, self.burst, self.rate_limit, self.stale, self.bad_event)
        for scene in (*scenes, self.outage):
            if await self.pause(gap_s):
                return
            await scene()
        say("all scenes played; the steady flow goes on until Ctrl-C")
        self.played.set()

    async def second_org(self) -> None:
        say(f"a second org, {ACME} (HubSpot and Airtable), starts sending")
        for lead in ACME_LEADS:
            await self.send(ACME, lead)

    async def burst(self) -> None:
        say(f"a burst: {BURST} evaluations for {ACME} at once (batched writes)")
        for lead in burst_leads(BURST):
            await self.send(ACME, lead)

    async def rate_limit(self) -> None:
        say(f"HubSpot answers the next request 429 (Retry-After {RATE_LIMIT_WAIT_S} s)")
        self.hubspot.inject(
            429,
            limit_body("TEN_SECONDLY_ROLLING"),
            headers={"Retry-After": str(RATE_LIMIT_WAIT_S)},
            path=OBJECTS,
        )
        await self.send(ORG, LEADS[1])

    async def stale(self) -> None:
        lead = LEADS[0]
        say(f"a stale evaluation: {lead['lead_id']}'s from yesterday arrives after today's")
        await self.send(ORG, lead)
        if await self.pause(2):
            return
        await self.send(ORG, lead, evaluated_at=datetime.now(UTC) - timedelta(days=1))

    async def bad_event(self) -> None:
        say("a bad event (truncated JSON) goes to the DLQ; its partition keeps moving")
        await self.producer.send_and_wait(
            self.topic, b'{"schema_version": 1, "org_id": "org_demo", "lead": {', b"org_demo:lead_x"
        )

    async def outage(self) -> None:
        """HubSpot answers 503 until its circuit has opened and a probe has failed, then
        comes back; each step is announced only once the service showed it (its log,
        the sandbox's calls), so the scene plays the same on a slow machine."""
        say("HubSpot goes down (503 to every write): after 3 failed writes its circuit opens")
        self.hubspot.inject(503, path=OBJECTS, times=10**9)
        try:
            if not await self.drive_until(OPENED, OPEN_WAIT_S):
                say(f"(no circuit opened within {OPEN_WAIT_S} s: see the service log)")
                return
            say("its work waits in Kafka; a one-record probe tests HubSpot after 5 s")
            calls = len(self.hubspot.calls)
            if await self.until(lambda: self.failed_calls(calls) > 0, PROBE_WAIT_S):
                say("probe failed (503): the circuit stays open, the next probe after 10 s")
        finally:
            self.hubspot._faults.clear()  # HubSpot is back (as tests/test_load.py does)
        if self.stop.is_set():
            return
        say("HubSpot is back: the next probe gets through and closes the circuit")
        if not await self.drive_until(CLOSED, CLOSE_WAIT_S):
            say(f"(the circuit did not close within {CLOSE_WAIT_S} s: see the service log)")

    def failed_calls(self, since: int) -> int:
        return sum(1 for c in self.hubspot.calls[since:] if c.status == 503)

    async def drive_until(self, line: str, timeout_s: float) -> bool:
        """Send org_demo leads (HubSpot is one of its destinations) until the service
        logs `line`; False after `timeout_s` or on stop."""
        seen = len(self.log_lines)
        for i in range(int(timeout_s)):
            if any(line in logged for logged in self.log_lines[seen:]):
                return True
            await self.send(ORG, LEADS[i % len(LEADS)])
            if await self.pause(1):
                return False
        return False

    async def until(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        for _ in range(int(timeout_s * 5)):
            if ready():
                return True
            if await self.pause(0.2):
                return False
        return ready()
