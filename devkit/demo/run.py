"""`make run`: the whole thing on one machine, until Ctrl-C.

A broker (KAFKA_BOOTSTRAP_SERVERS, else Docker Kafka, else Tansu), the three
HTTPS CRM sandboxes, the real service process (`python -m service`) with a demo
CONFIG_FILE and secrets for two orgs, a steady flow of sample evaluations plus
scenes (demo_scenario.py), and a readable feed of the delivery statuses and DLQ
records as they arrive (demo_feed.py). Ctrl-C prints a summary and stops
everything it started, in order: the feed, the service, the sandboxes, the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from devkit.broker import free_port, local_broker
from devkit.demo.checkconfig import check_config_scene
from devkit.demo.data import demo_configs
from devkit.demo.feed import Feed, states_table
from devkit.demo.scenario import ACME, ORG, Scenario
from devkit.harness import create_input_topics, topic_env
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.salesforce import SalesforceSandbox

ORG_DESTINATIONS = {ORG: ("salesforce", "hubspot", "airtable"), ACME: ("hubspot", "airtable")}


async def wait_ready(
    port: int, proc: subprocess.Popen[bytes], log: Path, stop: asyncio.Event
) -> bool:
    """True once /readyz answers 200; False when Ctrl-C came first."""
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if stop.is_set():
                return False
            if proc.poll() is not None:
                sys.exit(f"the service exited ({proc.returncode}); see {log}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return True
            await asyncio.sleep(0.1)
    sys.exit(f"the service did not become ready; see {log}")


async def states(port: int) -> list[str]:
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/v1/destinations"
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                return states_table(await resp.json())
    return ["(GET /v1/destinations did not answer)"]


async def run(every_s: float, duration_s: float | None, gap_s: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    work = Path(tempfile.mkdtemp(prefix="trailspark-demo-"))
    secrets = work / "secrets"
    secrets.mkdir()
    with local_broker() as bootstrap:
        env = topic_env("demo")
        await create_input_topics(bootstrap, env)
        sf, hs, at = SalesforceSandbox(work), HubSpotSandbox(work), AirtableSandbox(work)
        async with sf, hs, at:
            seed_sandboxes(sf, hs)
            credentials = {
                "salesforce": sf.credentials(),
                "hubspot": hs.credentials(),
                "airtable": at.credentials(),
            }
            configs = []
            for org, names in ORG_DESTINATIONS.items():
                configs += demo_configs(org, names)
                for name in names:
                    (secrets / f"{org}-{name}.json").write_bytes(orjson.dumps(credentials[name]))
            config_file = work / "configs.json"
            config_file.write_bytes(orjson.dumps(configs))
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
                # Its own process group: Ctrl-C reaches the demo only, which then
                # stops the service in order. Popen only forks: the loop is not blocked.
                proc = subprocess.Popen(  # noqa: ASYNC220
                    [sys.executable, "-m", "service"],
                    env=service_env,
                    stderr=out,
                    process_group=0,
                )
            try:
                if await wait_ready(port, proc, log, stop):
                    print(banner(bootstrap, port, log, sf, hs, at, work), flush=True)
                    await check_config_scene(ORG, work, sf, service_env)
                    if duration_s:
                        loop.call_later(duration_s, stop.set)
                    feed = Feed(bootstrap, env, log)
                    await play(bootstrap, env, hs, feed, every_s, gap_s, stop)
                    print("\n".join(["", *feed.summary(), *await states(port)]), flush=True)
            finally:
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(proc.wait, 30)
                print(f"stopped: the service (exit {code}; its log: {log})", flush=True)
        print("stopped: the sandboxes", flush=True)
    print("stopped: the broker", flush=True)


async def play(
    bootstrap: str,
    env: dict[str, str],
    hs: HubSpotSandbox,
    feed: Feed,
    every_s: float,
    gap_s: float,
    stop: asyncio.Event,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        scenario = Scenario(producer, env["TOPIC_EVALUATIONS"], hs, stop, feed.log_lines)
        tasks = [
            asyncio.create_task(feed.run(stop)),
            asyncio.create_task(scenario.steady(every_s)),
            asyncio.create_task(scenario.scenes(gap_s)),
        ]
        await stop.wait()
        await asyncio.gather(*tasks)
    finally:
        await producer.stop()


def seed_sandboxes(sf: SalesforceSandbox, hs: HubSpotSandbox) -> None:
    """Some records exist already, so the feed shows updates as well as creates."""
    sf.seed("Account", {"Name": "Analytical Engines Ltd", "Website": "analytical.example"})
    hs.seed("companies", name="Analytical Engines Ltd", domain="analytical.example")


def banner(bootstrap: str, port: int, log: Path, *sandboxes: Any) -> str:
    sf, hs, at, work = sandboxes
    see = "\n".join(
        f"  {name:<10} curl --cacert {s.ca_file} {s.base_url}/_sandbox/records"
        for name, s in (("salesforce", sf), ("hubspot", hs), ("airtable", at))
    )
    return (
        f"TrailSpark Destinations demo: broker {bootstrap}, service http://127.0.0.1:{port}"
        f" (/metrics /readyz /v1/destinations), log {log}\nrecords in the sandboxes:\n{see}\n"
        f"files in {work}. Ctrl-C prints a summary and stops everything.\n"
        "time      destination status    org/lead                 records / reason"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the whole service locally.")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between evaluations")
    parser.add_argument("--gap", type=float, default=4.0, help="seconds between scenes")
    parser.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    args = parser.parse_args()
    asyncio.run(run(args.every, args.duration, args.gap))


if __name__ == "__main__":
    main()
