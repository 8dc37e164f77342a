"""What the demo sends: a steady flow for one org, and scenes that show what the
service survives, each announced in the feed with a `»` line."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
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
        self, producer: AIOKafkaProducer, topic: str, hubspot: HubSpotSandbox, stop: asyncio.Event
    ) -> None:
        self.producer = producer
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
            path="/crm/v3/objects/",
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
        """HubSpot answers 503 for a while: three failed writes open its circuit,
        the work waits in Kafka while one-record probes test HubSpot, and the
        circuit closes once a probe gets through; Salesforce and Airtable go on."""
        say("HubSpot goes down (503): its circuit opens after 3 failed writes, then probes")
        self.hubspot.inject(503, path="/crm/v3/objects/", times=5)
        for lead in LEADS[:3]:
            await self.send(ORG, lead)
            if await self.pause(1.5):
                return
