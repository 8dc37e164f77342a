"""The demo's readable feed: one line per delivery status and per DLQ record,
the service's own lines worth seeing (a rate limit waited out), and the tally
printed as a summary on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from devkit.broker import partitions_of

ICONS = {"delivered": "+", "skipped": "~", "failed": "x", "retrying": "."}
STATUSES = ("delivered", "skipped", "failed", "retrying")
# Service log lines shown in the feed (text format: the message follows the level).
LOG_MARKERS = (
    "rate limited; lane waits",
    "circuit opened for",
    "circuit closed for",
)


def say(text: str) -> None:
    print(f"          » {text}", flush=True)


def describe(status: dict[str, Any]) -> str:
    written = ", ".join(f"{r['object']} {r['id']} {r['action']}" for r in status["records"])
    detail = written or status.get("reason") or (status.get("error") or {}).get("message", "")
    lead = f"{status['org_id']}/{status['lead_id']}"
    return (
        f"{status['completed_at'][11:19]}  {ICONS.get(status['status'], '?')} "
        f"{status['destination']:<10} {status['status']:<9} {lead:<24} "
        f"{detail}  ({status['latency_ms']} ms, attempt {status['attempts']})"
    )


def describe_dlq(record: ConsumerRecord) -> str:
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers or ()}
    key = (record.key or b"").decode("utf-8", "replace")
    return (
        f"          ! DLQ        invalid   {key:<24} {headers.get('error.code', '?')} "
        f"({headers.get('error.stage', '?')}): {headers.get('error.message', '')[:80]}"
    )


class Feed:
    def __init__(self, bootstrap: str, env: dict[str, str], log: Path) -> None:
        self.bootstrap = bootstrap
        self.status_topic = env["TOPIC_STATUS"]
        self.dlq_topic = env["TOPIC_DLQ"]
        self.log = log
        self.tally: Counter[tuple[str, str]] = Counter()  # (destination, status)
        self.reasons: Counter[str] = Counter()  # skipped reasons and error codes
        self.dead_lettered = 0
        self.log_lines: list[str] = []  # the service's lines shown, for the scenes to wait on

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(
            self._tail(self.status_topic, self._status, stop),
            self._tail(self.dlq_topic, self._dlq, stop),
            self._tail_log(stop),
        )

    def _status(self, record: ConsumerRecord) -> None:
        status = orjson.loads(record.value)
        self.tally[(status["destination"], status["status"])] += 1
        why = status.get("reason") or (status.get("error") or {}).get("code")
        if why:
            self.reasons[f"{status['status']} {why}"] += 1
        print(describe(status), flush=True)

    def _dlq(self, record: ConsumerRecord) -> None:
        self.dead_lettered += 1
        print(describe_dlq(record), flush=True)

    async def _tail(
        self, topic: str, handle: Callable[[ConsumerRecord], None], stop: asyncio.Event
    ) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            while not (tps := await partitions_of(self.bootstrap, topic)):
                await asyncio.sleep(0.5)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not stop.is_set():
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        handle(record)
        finally:
            await consumer.stop()

    async def _tail_log(self, stop: asyncio.Event) -> None:
        offset = 0
        while not stop.is_set():
            chunk = await asyncio.to_thread(_read_from, self.log, offset)
            offset += len(chunk)
            for line in chunk.decode("utf-8", "replace").splitlines():
                if any(marker in line for marker in LOG_MARKERS):
                    # "date time LEVEL logger: message" -> "HH:MM:SS  service: message"
                    message = line.partition(": ")[2]
                    self.log_lines.append(message)
                    print(f"{line[11:19]}  … service: {message}", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.3)

    def summary(self) -> list[str]:
        destinations = sorted({d for d, _ in self.tally})
        lines = [
            "summary: statuses per destination",
            "  destination " + "".join(f"{s:>11}" for s in STATUSES),
        ]
        for name in destinations:
            counts = "".join(f"{self.tally[(name, s)]:>11}" for s in STATUSES)
            lines.append(f"  {name:<11} {counts}")
        lines.append(f"  DLQ: {self.dead_lettered} invalid event(s)")
        if self.reasons:
            why = ", ".join(f"{k} x{n}" for k, n in sorted(self.reasons.items()))
            lines.append(f"  reasons: {why}")
        return lines


def _read_from(path: Path, offset: int) -> bytes:
    """Only whole lines: a partly written last line waits for the next read."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
        f.seek(offset)
        data = f.read()
        return data[: data.rfind(b"\n") + 1]
    return b""


def states_table(body: dict[str, Any]) -> list[str]:
    """GET /v1/destinations as a few aligned lines."""
    lines = ["state per (org, destination), from GET /v1/destinations:"]
    for row in body.get("destinations", []):
        delivered_at = row.get("last_delivery_at")
        last = delivered_at[11:19] if delivered_at else "-"
        lines.append(
            f"  {row['org_id']:<9} {row['destination']:<10} v{row['config_version']} "
            f"{'active' if row['active'] else 'inactive'}  lane {row['lane_depth']}  "
            f"circuit {row['circuit']}  last delivery {last}  "
            f"last error {row.get('last_error_code') or '-'}"
        )
    return lines
