"""`make run`: the whole thing on one machine, until Ctrl-C.

A broker (KAFKA_BOOTSTRAP_SERVERS, else Docker Kafka, else Tansu), the three
HTTPS CRM sandboxes, the real service process (`python -m service`) with a demo
CONFIG_FILE and secrets, a producer sending sample evaluations, and a readable
feed of the delivery statuses as they arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from service.devtools.broker import free_port, local_broker, partitions_of
from service.devtools.demo_data import LEADS, REASONS, demo_configs
from tests.harness import create_input_topics, topic_env
from tests.sandboxes.airtable import AirtableSandbox
from tests.sandboxes.hubspot import HubSpotSandbox
from tests.sandboxes.salesforce import SalesforceSandbox

ORG = "org_demo"
ICONS = {"delivered": "+", "skipped": "~", "failed": "x", "retrying": "."}


def event_for(lead: dict[str, str]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "occurred_at": now,
        "org_id": ORG,
        "lead": lead,
        "evaluation": {
            "evaluation_id": f"eval_{uuid.uuid4().hex[:8]}",
            "score": random.choice(["hot", "warm", "cold"]),
            "reasoning": random.choice(REASONS),
            "evaluated_at": now,
            "trigger": random.choice(["batch", "re_evaluation", "manual"]),
            "propensity": random.choice(["high", "medium", "low"]),
        },
    }


async def produce(bootstrap: str, topic: str, every_s: float, stop: asyncio.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        while not stop.is_set():
            event = event_for(random.choice(LEADS))
            key = f"{ORG}:{event['lead']['lead_id']}".encode()
            await producer.send_and_wait(topic, orjson.dumps(event), key)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await producer.stop()


async def print_statuses(bootstrap: str, topic: str, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        while not (tps := await partitions_of(bootstrap, topic)):  # noqa: ASYNC110 (a remote state)
            await asyncio.sleep(0.5)
        consumer.assign(tps)
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    print(describe(orjson.loads(record.value)), flush=True)
    finally:
        await consumer.stop()


def describe(status: dict[str, Any]) -> str:
    written = ", ".join(f"{r['object']} {r['id']} {r['action']}" for r in status["records"])
    detail = written or status.get("reason") or (status.get("error") or {}).get("message", "")
    return (
        f"{status['completed_at'][11:19]}  {ICONS.get(status['status'], '?')} "
        f"{status['destination']:<10} {status['status']:<9} {status['lead_id']:<14} "
        f"{detail}  ({status['latency_ms']} ms, attempt {status['attempts']})"
    )


async def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.poll() is not None:
                sys.exit(f"the service exited ({proc.returncode}); see {log}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    sys.exit(f"the service did not become ready; see {log}")


async def run(every_s: float, duration_s: float | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="trailspark-demo-"))
    secrets = work / "secrets"
    secrets.mkdir()
    with local_broker() as bootstrap:
        env = topic_env("demo")
        await create_input_topics(bootstrap, env)
        sf = SalesforceSandbox(work)
        hs = HubSpotSandbox(work)
        at = AirtableSandbox(work)
        async with sf, hs, at:
            seed_sandboxes(sf, hs)
            for name, sandbox in (("salesforce", sf), ("hubspot", hs), ("airtable", at)):
                (secrets / f"{ORG}-{name}.json").write_bytes(orjson.dumps(sandbox.credentials()))
            config_file = work / "configs.json"
            config_file.write_bytes(orjson.dumps(demo_configs(ORG)))
            port = free_port()
            log = work / "service.log"
            service_env = {
                **os.environ,
                **env,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "SECRETS_DIR": str(secrets),
                "CONFIG_FILE": str(config_file),
                "DESTINATION_CA_FILE": str(sf.ca_file),
                "HTTP_PORT": str(port),
                "LOG_FORMAT": "text",
                "KAFKA_SESSION_TIMEOUT_MS": "3000",
            }
            with log.open("wb") as out:
                # Popen only forks; it does not wait, so it does not block the loop.
                proc = subprocess.Popen(  # noqa: ASYNC220
                    [sys.executable, "-m", "service"], env=service_env, stderr=out
                )
            try:
                await wait_ready(port, proc, log)
                print(banner(bootstrap, port, log, sf, hs, at, work), flush=True)
                await feed(bootstrap, env, every_s, duration_s)
            finally:
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(proc.wait, 30)
                print(f"service stopped (exit {code}); its log: {log}", flush=True)


def seed_sandboxes(sf: SalesforceSandbox, hs: HubSpotSandbox) -> None:
    """Some records exist already, so the feed shows updates as well as creates."""
    sf.seed("Account", {"Name": "Analytical Engines Ltd", "Website": "analytical.example"})
    hs.seed("companies", name="Analytical Engines Ltd", domain="analytical.example")


async def feed(
    bootstrap: str, env: dict[str, str], every_s: float, duration_s: float | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if duration_s:
        loop.call_later(duration_s, stop.set)
    tasks = [
        asyncio.create_task(produce(bootstrap, env["TOPIC_EVALUATIONS"], every_s, stop)),
        asyncio.create_task(print_statuses(bootstrap, env["TOPIC_STATUS"], stop)),
    ]
    await stop.wait()
    await asyncio.gather(*tasks)


def banner(bootstrap: str, port: int, log: Path, *sandboxes: Any) -> str:
    sf, hs, at, work = sandboxes
    see = "\n".join(
        f"  {name:<10} curl --cacert {s.ca_file} {s.base_url}/_sandbox/records"
        for name, s in (("salesforce", sf), ("hubspot", hs), ("airtable", at))
    )
    return (
        f"TrailSpark Destinations demo: broker {bootstrap}, service http://127.0.0.1:{port}"
        f" (/metrics /readyz), log {log}\nrecords in the sandboxes:\n{see}\n"
        f"files in {work}. Ctrl-C stops everything.\n"
        "time      destination status    lead           records / reason"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the whole service locally.")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between evaluations")
    parser.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    args = parser.parse_args()
    asyncio.run(run(args.every, args.duration))


if __name__ == "__main__":
    main()
