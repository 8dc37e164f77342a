"""What the end-to-end benchmarks (bench.sections.latency, memory, scaleout, crash) share:
timestamps, percentiles, a paced producer, process figures from /proc, and the
`python -m bench.sections.<name> [--quick]` entry point that brings its own broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.figures import Figure
from devkit.broker import local_broker

Run = Callable[[str, Path, bool], Awaitable[list[Figure]]]
MakeEvent = Callable[[int], dict[str, Any]]


def rfc3339_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the value that q of the samples are at or under."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def key_of(event: dict[str, Any]) -> bytes:
    return f"{event['org_id']}:{event['lead']['lead_id']}".encode()


async def produce_all(kafka: str, topic: str, events: Sequence[dict[str, Any]]) -> None:
    """As fast as the client goes (a backlog): big batches, acks awaited at the end."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, enable_idempotence=False, linger_ms=50, max_batch_size=1 << 20
    )
    await producer.start()
    try:
        for event in events:
            await producer.send(topic, orjson.dumps(event), key_of(event))
        await producer.flush()
    finally:
        await producer.stop()


async def produce_apart(kafka: str, topic: str, events: Sequence[dict[str, Any]]) -> None:
    """produce_all in a thread with its own event loop: the sandboxes share this
    process's loop, and a producer starved by them trickles a burst out at the
    rate they answer, which shrinks every batch downstream (measured: 2 instances
    got ~150 events/s and batches of 2-3 records, the producer being the limit)."""
    await asyncio.to_thread(asyncio.run, produce_all(kafka, topic, events))


async def paced(
    kafka: str, topic: str, make: MakeEvent, rate: float, seconds: float
) -> dict[str, float]:
    """Offer `rate` events/s for `seconds`, each stamped `occurred_at` as it is sent
    (20 ms ticks, so the flow is smooth); event id -> occurred_at (epoch s)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=False, linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    started, n = monotonic(), 0
    try:
        while (elapsed := monotonic() - started) < seconds:
            while n < int(elapsed * rate) + 1:
                event = make(n)
                event["occurred_at"] = rfc3339_now()
                sent[str(event["event_id"])] = epoch(event["occurred_at"])
                await producer.send(topic, orjson.dumps(event), key_of(event))
                n += 1
            await asyncio.sleep(0.02)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def paced_apart(
    kafka: str, topic: str, make: MakeEvent, rate: float, seconds: float
) -> dict[str, float]:
    """`paced` in a thread of its own: stamps and sends are not held up by the
    sandboxes' work on this process's loop."""
    return await asyncio.to_thread(asyncio.run, paced(kafka, topic, make, rate, seconds))


def proc_status(pid: int, field: str) -> float:
    """A /proc/<pid>/status figure in MB (VmHWM: the peak RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process; with no pid, of the whole machine (all cores)."""
    if pid is None:
        busy = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = sum(int(v) for n, v in enumerate(busy) if n not in (3, 4))  # not idle, iowait
        return ticks / 100
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def broker_pid(kafka: str) -> int | None:
    """The local Tansu broker's process (its command line names the listener)."""
    port = kafka.rsplit(":", 1)[-1]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(f"127.0.0.1:{port}".encode()) for a in args) and b"broker" in args:
            return int(cmdline.parent.name)
    return None


def cpu_snapshot(pid: int) -> tuple[float, float, float, float]:
    """(wall, the service's CPU, this process's CPU, the machine's CPU) seconds."""
    return monotonic(), cpu_seconds(pid), cpu_seconds(os.getpid()), cpu_seconds()


def cpu_used(section: str, label: str, pid: int, since: tuple[float, ...]) -> Figure:
    """Cores used since `since`: the service's, with this process's (the sandboxes,
    producer and status reader) and the machine's (other tenants too) in the note."""
    now = cpu_snapshot(pid)
    wall, service, harness, machine = (b - a for a, b in zip(since, now, strict=True))
    note = f"harness {harness / wall:.2f} cores, machine {machine / wall:.2f} of 2"
    return Figure(section, f"{label}: service CPU", service / wall, "cores", None, note)


def show(figures: Sequence[Figure]) -> None:
    for f in figures:
        target = f" (target {f.target_text}: {f.mark})" if f.target else ""
        note = f"   [{f.note}]" if f.note else ""
        print(f"{f.section:14} {f.name:58} {f.value_text:>12}{target}{note}")


def main(run: Run, doc: str | None) -> None:
    """`python -m bench.sections.<name> [--quick]`: its own local broker and scratch dir."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    args = parser.parse_args()

    async def go() -> list[Figure]:
        with local_broker() as kafka, tempfile.TemporaryDirectory() as work:
            return await run(kafka, Path(work), args.quick)

    show(asyncio.run(go()))
