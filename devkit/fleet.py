"""Many orgs against the real `python -m service` process, the real broker and
the three HTTPS sandboxes: what the load tests (test_load.py) run.

async with Fleet(kafka, tmp_path, orgs=100) as f:   # = prepare(), then launch()
    await f.produce(events)            # keyed org:lead, like the evaluation pipeline
    await f.wait_terminal(n, timeout)  # every (event, destination) pair
    f.peak_rss_mb(), f.log_lines("ERROR")
    await f.add_instance()             # one more process in the same group

Each instance writes to Salesforce with a token of its own (`sf.account_tokens`),
so the sandbox can tell which instance wrote which record (`sf.writes`).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from time import monotonic
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from devkit.broker import partitions_of
from devkit.factories import DEFAULT_TARGETS, make_config
from devkit.harness import create_input_topics, topic_env
from devkit.instance import Instance, base_env
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.salesforce import SalesforceSandbox

DESTINATIONS = ("salesforce", "hubspot", "airtable")
LEAD = {**DEFAULT_TARGETS["salesforce"][0], "create_if_missing": True}


def org_id(i: int) -> str:
    return f"org{i:04d}"


def base_id(i: int) -> str:
    return f"app{i:014d}"


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
        tenant_limits: bool = False,
        per_org: Callable[[int, str], dict[str, Any]] | None = None,
    ) -> None:
        """Orgs 0 .. own_hubspot-1 get a HubSpot sandbox of their own (`hs_own`), to break.
        `configs`: destination -> make_config overrides (e.g. HubSpot propensity);
        `per_org(i, destination)`: more overrides for one org's config.
        `tenant_limits`: the published per-tenant limits, enforced by the sandboxes:
        each HubSpot account 190 requests per 10 s and 4 searches/s, each Airtable
        base 5 requests/s with the 30 s penalty after a 429."""
        self.kafka, self.tmp, self.orgs, self.partitions = kafka, tmp_path, orgs, partitions
        self.destinations = destinations
        self.overrides = configs or {}
        self.per_org = per_org
        tls = tmp_path / "tls"
        tls.mkdir(exist_ok=True)
        self.sf = SalesforceSandbox(tls, api_limit=10**9)
        if tenant_limits:
            self.hs = HubSpotSandbox(tls, per_account=True)
            airtable_rate = 5
        else:
            self.hs = HubSpotSandbox(tls, max_requests=10**9, search_per_s=10**6)
        self.at = AirtableSandbox(tls, rate_limit=airtable_rate)
        self.hs_own = HubSpotSandbox(tls, max_requests=10**9, search_per_s=10**6)
        self.own_hubspot = own_hubspot
        self.sandboxes = (self.sf, self.hs, self.at, self.hs_own)
        self.env = {**topic_env(f"load{os.urandom(4).hex()}"), **(env or {})}
        self.instances: list[Instance] = []
        self.started = monotonic()
        self.terminal: dict[tuple[str, str], dict[str, Any]] = {}  # (event, destination) -> status
        self.arrived: dict[tuple[str, str], float] = {}  # monotonic arrival of the terminal status
        self.statuses = 0
        self.every: Counter[tuple[str, str | None]] = Counter()  # every terminal status
        self.history: dict[tuple[str, str], list[dict[str, Any]]] = {}  # every status, in order
        self.sent_at: dict[str, float] = {}  # event id -> monotonic produce time
        self._reader: asyncio.Task[None] | None = None

    # The first instance: what single-process tests use.
    @property
    def process(self) -> Any:
        return self.instances[0].process

    @property
    def port(self) -> int:
        return self.instances[0].port

    @property
    def log(self) -> Path:
        return self.instances[0].log

    @property
    def process_env(self) -> dict[str, str]:
        return self.instances[0].env

    async def __aenter__(self) -> Fleet:
        await self.prepare()
        await self.launch()
        return self

    async def prepare(self) -> None:
        """Sandboxes, topics, secrets and configs; no process yet (a benchmark fills the
        topic and runs its baselines here). `launch()` then starts the service."""
        for sandbox in self.sandboxes:
            await sandbox.start()
        await create_input_topics(self.kafka, self.env, self.partitions)
        configs = []
        for i in range(self.orgs):
            for name in self.destinations:
                extra: dict[str, Any] = {"targets": [LEAD]} if name == "salesforce" else {}
                extra.update(self.overrides.get(name, {}))
                extra.update(self.per_org(i, name) if self.per_org is not None else {})
                configs.append(make_config(name, org_id(i), **extra))
        (self.tmp / "configs.json").write_bytes(orjson.dumps(configs))
        self._write_secrets(self.tmp / "secrets", self.sf.token)  # for benchmarks' baselines

    async def launch(self, **instance: Any) -> None:
        """The status reader and the first instance (`add_instance(**instance)`)."""
        self._reader = asyncio.create_task(self._read_statuses())
        await self.add_instance(**instance)

    async def __aexit__(self, *exc: object) -> None:
        for instance in self.instances:
            await instance.terminate()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for sandbox in self.sandboxes:
            await sandbox.stop()

    def _write_secrets(self, secrets: Path, sf_token: str) -> Path:
        """Credentials of every org: Salesforce with `sf_token`, the others per org."""
        secrets.mkdir(exist_ok=True)
        self.sf.account_tokens.add(sf_token)
        for i in range(self.orgs):
            org = org_id(i)
            hubspot = self.hs_own if i < self.own_hubspot else self.hs
            token = f"{hubspot.token}-{org}"  # each org is an account of its own
            hubspot.account_tokens.add(token)
            creds = {
                "salesforce": {**self.sf.credentials(), "access_token": sf_token},
                "hubspot": {**hubspot.credentials(), "access_token": token},
                "airtable": self.at.credentials(base_id=base_id(i)),
            }
            for dest in self.destinations:
                (secrets / f"{org}-{dest}.json").write_bytes(orjson.dumps(creds[dest]))
        return secrets

    async def add_instance(self, *, module: str = "service", ready: bool = True) -> Instance:
        """One more `python -m service` (or a test double, `module`) in the same group;
        ready, unless `ready=False`."""
        name = f"i{len(self.instances)}"
        # Each instance its own Salesforce token: the sandbox tells who wrote what.
        secrets = self._write_secrets(self.tmp / f"secrets-{name}", f"{self.sf.token}-{name}")
        env = base_env(self.kafka, secrets, self.tmp / "configs.json", self.sf.ca_file)
        instance = Instance(name, {**env, **self.env}, self.tmp, module)
        self.instances.append(instance)
        instance.start()
        if ready:
            await instance.wait_ready()
        return instance

    async def add_instances(self, n: int) -> list[Instance]:
        """`n` more processes in the same group, started together; once all are ready."""
        added = []
        for _ in range(n):
            name = f"i{len(self.instances)}"
            secrets = self._write_secrets(self.tmp / f"secrets-{name}", f"{self.sf.token}-{name}")
            env = base_env(self.kafka, secrets, self.tmp / "configs.json", self.sf.ca_file)
            instance = Instance(name, {**env, **self.env}, self.tmp)
            self.instances.append(instance)
            instance.start()
            added.append(instance)
        for instance in added:
            await instance.wait_ready()
        return added

    async def work_partitions(self) -> list[int]:
        """Work partitions each running instance owns (its consumer_lag series)."""
        return [await i.work_partitions() if i.running else 0 for i in self.instances]

    async def settled(self, steady_s: float = 3.0, timeout: float = 120) -> list[int]:
        """Until every work partition is owned once and the split held for `steady_s`
        (the group's rebalances are over)."""
        deadline, last, since = monotonic() + timeout, [-1], monotonic()
        while monotonic() < deadline:
            now = await self.work_partitions()
            if now != last:
                last, since = now, monotonic()
            elif sum(now) == self.partitions and monotonic() - since >= steady_s:
                return now
            await asyncio.sleep(0.5)
        raise AssertionError(f"work partitions never settled: {last}")

    async def kill_and_restart(self, index: int = 0) -> None:
        """kill -9, then the same process again (same STATE_DIR, group, port)."""
        instance = self.instances[index]
        await instance.kill()
        instance.start()
        await instance.wait_ready()

    async def wait_ready(self, timeout: float = 90) -> None:
        await self.instances[0].wait_ready(timeout)

    async def metric(self, name: str, **labels: str) -> float:
        return await self.instances[0].metric(name, **labels)

    def peak_rss_mb(self) -> float:
        return self.instances[0].peak_rss_mb()

    def log_lines(self, level: str) -> list[str]:
        return [line for i in self.instances for line in i.log_lines(level)]

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

    async def produce_at_once(self, events: list[dict[str, Any]]) -> None:
        """A burst: the events serialized first, then one batch per partition (as
        the Java client partitions `org:lead`), sent together. `produce` sends one
        by one, and on 2 cores busy with six instances that took 5 s for 4,800."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka,
            enable_idempotence=False,
            max_batch_size=4 << 20,
            max_request_size=16 << 20,
        )
        await producer.start()
        try:
            topic = self.env["TOPIC_EVALUATIONS"]
            count = len(await producer.partitions_for(topic))
            batches: dict[int, Any] = {}
            for event in events:
                key = f"{event['org_id']}:{event['lead']['lead_id']}".encode()
                partition = (murmur2(key) & 0x7FFFFFFF) % count
                batch = batches.setdefault(partition, producer.create_batch())
                if batch.append(key=key, value=orjson.dumps(event), timestamp=None) is None:
                    raise AssertionError("a burst larger than max_batch_size")
            sent = [await producer.send_batch(b, topic, partition=p) for p, b in batches.items()]
            await asyncio.gather(*sent)
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
                        key = (status["event_id"], status["destination"])
                        self.history.setdefault(key, []).append(status)
                        if status["status"] == "retrying":
                            continue
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
            assert any(i.running for i in self.instances), "service exited"
            await asyncio.sleep(0.25)

    def count(self, destination: str | None = None, among: set[str] | None = None) -> int:
        return sum(
            1
            for e, d in self.terminal
            if (destination is None or d == destination) and (among is None or e in among)
        )
