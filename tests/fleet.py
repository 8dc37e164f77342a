"""Many orgs against the real `python -m service` process, the real broker and
the three HTTPS sandboxes: what the load tests (test_load.py) run.

async with Fleet(kafka, tmp_path, orgs=100) as f:
    await f.produce(events)            # keyed org:lead, like the evaluation pipeline
    await f.wait_terminal(n, timeout)  # every (event, destination) pair
    f.peak_rss_mb(), f.error_lines()
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from time import monotonic
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from service.devtools.broker import free_port, partitions_of
from tests.factories import DEFAULT_TARGETS, make_config
from tests.harness import create_input_topics, topic_env
from tests.sandboxes.airtable import AirtableSandbox
from tests.sandboxes.hubspot import HubSpotSandbox
from tests.sandboxes.salesforce import SalesforceSandbox

DESTINATIONS = ("salesforce", "hubspot", "airtable")
LEAD = {**DEFAULT_TARGETS["salesforce"][0], "create_if_missing": True}


def org_id(i: int) -> str:
    return f"org{i:04d}"


def base_id(i: int) -> str:
    return f"app{i:014d}"


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "service"], env=env, stderr=out)


class Fleet:
    def __init__(
        self,
        kafka: str,
        tmp_path: Path,
        *,
        orgs: int,
        destinations: tuple[str, ...] = DESTINATIONS,
        airtable_rate: int = 10**6,
        partitions: int = 6,
        own_hubspot: int = 0,
        env: dict[str, str] | None = None,
        configs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Orgs 0 .. own_hubspot-1 get a HubSpot sandbox of their own (`hs_own`), to break.
        `configs`: destination -> make_config overrides (e.g. HubSpot propensity)."""
        self.kafka, self.tmp, self.orgs, self.partitions = kafka, tmp_path, orgs, partitions
        self.destinations = destinations
        self.overrides = configs or {}
        tls = tmp_path / "tls"
        tls.mkdir(exist_ok=True)
        self.sf = SalesforceSandbox(tls, api_limit=10**9)
        self.hs = HubSpotSandbox(tls, max_requests=10**9, search_per_s=10**6)
        self.at = AirtableSandbox(tls, rate_limit=airtable_rate)
        self.hs_own = HubSpotSandbox(tls, max_requests=10**9, search_per_s=10**6)
        self.own_hubspot = own_hubspot
        self.sandboxes = (self.sf, self.hs, self.at, self.hs_own)
        self.env = {**topic_env(f"load{os.urandom(4).hex()}"), **(env or {})}
        self.port = free_port()
        self.log = tmp_path / "service.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.terminal: dict[tuple[str, str], dict[str, Any]] = {}  # (event, destination) -> status
        self.arrived: dict[tuple[str, str], float] = {}  # monotonic arrival of the terminal status
        self.statuses = 0
        self.every: Counter[tuple[str, str | None]] = Counter()  # every terminal status
        self.sent_at: dict[str, float] = {}  # event id -> monotonic produce time
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Fleet:
        for sandbox in self.sandboxes:
            await sandbox.start()
        await create_input_topics(self.kafka, self.env, self.partitions)
        secrets = self.tmp / "secrets"
        secrets.mkdir(exist_ok=True)
        configs = []
        for i in range(self.orgs):
            org = org_id(i)
            hubspot = self.hs_own if i < self.own_hubspot else self.hs
            token = f"{hubspot.token}-{org}"  # each org is an account of its own
            hubspot.account_tokens.add(token)
            creds = {
                "salesforce": self.sf.credentials(),
                "hubspot": {**hubspot.credentials(), "access_token": token},
                "airtable": self.at.credentials(base_id=base_id(i)),
            }
            for name in self.destinations:
                (secrets / f"{org}-{name}.json").write_bytes(orjson.dumps(creds[name]))
                extra = {"targets": [LEAD]} if name == "salesforce" else {}
                configs.append(make_config(name, org, **{**extra, **self.overrides.get(name, {})}))
        (self.tmp / "configs.json").write_bytes(orjson.dumps(configs))
        env = {
            "PATH": os.environ["PATH"],
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "SECRETS_DIR": str(secrets),
            "CONFIG_FILE": str(self.tmp / "configs.json"),
            "DESTINATION_CA_FILE": str(self.sf.ca_file),
            "HTTP_PORT": str(self.port),
            "LOG_FORMAT": "json",
            "STATE_DIR": str(self.tmp / "state"),  # kept across restarts, like an emptyDir
            **self.env,
        }
        self.process_env = env
        self.process = _start(env, self.log)
        self._reader = asyncio.create_task(self._read_statuses())
        await self.wait_ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 60)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for sandbox in self.sandboxes:
            await sandbox.stop()

    async def kill_and_restart(self) -> None:
        """kill -9, then the same process again (same STATE_DIR, group, port)."""
        assert self.process is not None
        self.process.kill()
        await asyncio.to_thread(self.process.wait, 30)
        self.process = _start(self.process_env, self.log)
        await self.wait_ready()

    async def wait_ready(self, timeout: float = 90) -> None:
        deadline = monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, (
                    self.log.read_text()[-3000:]
                )
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError("service never became ready")

    async def metric(self, name: str, **labels: str) -> float:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.port}/metrics") as r,
        ):
            text = await r.text()
        want = f"trailspark_destinations_{name}"
        if labels:
            want += "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        total = 0.0
        for line in text.splitlines():
            if line.startswith(want + " ") or (not labels and line.startswith(want + "{")):
                total += float(line.rsplit(" ", 1)[1])
        return total

    async def produce(self, events: list[dict[str, Any]]) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka, enable_idempotence=False, linger_ms=20
        )
        await producer.start()
        try:
            topic = self.env["TOPIC_EVALUATIONS"]
            for event in events:
                key = f"{event['org_id']}:{event['lead']['lead_id']}".encode()
                await producer.send(topic, orjson.dumps(event), key)
            await producer.flush()
            now = monotonic()
            for event in events:
                self.sent_at[str(event["event_id"])] = now
        finally:
            await producer.stop()

    async def _read_statuses(self) -> None:
        topic = self.env["TOPIC_STATUS"]
        while not await partitions_of(self.kafka, topic):
            await asyncio.sleep(0.5)
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=self.kafka, auto_offset_reset="earliest", fetch_max_wait_ms=100
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                now = monotonic()
                for records in batches.values():
                    for record in records:
                        self.statuses += 1
                        status = orjson.loads(record.value)
                        if status["status"] == "retrying":
                            continue
                        key = (status["event_id"], status["destination"])
                        self.every[(status["status"], status["reason"])] += 1
                        if key not in self.terminal:
                            self.terminal[key] = status
                            self.arrived[key] = now
        finally:
            await consumer.stop()

    async def wait_terminal(
        self, n: int, timeout: float, destination: str | None = None, among: set[str] | None = None
    ) -> None:
        deadline = monotonic() + timeout
        while (done := self.count(destination, among)) < n:
            assert monotonic() < deadline, f"{done} of {n} pairs terminal"
            assert self.process is not None and self.process.poll() is None, "service exited"
            await asyncio.sleep(0.25)

    def count(self, destination: str | None = None, among: set[str] | None = None) -> int:
        return sum(
            1
            for e, d in self.terminal
            if (destination is None or d == destination) and (among is None or e in among)
        )

    def peak_rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def log_lines(self, level: str) -> list[str]:
        """Log lines at `level` (json format), and any line that is not JSON."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                if orjson.loads(line).get("level") == level:
                    found.append(line)
            except orjson.JSONDecodeError:
                found.append(line)  # a traceback or a print: never expected
        return found
