"""Runs bench/lib/floor_loop.py in a process of its own over a fleet's events and sandboxes.

The floor gets its own process (and core) as the service does; the sandboxes stay
in this one, so our CPU time over the run is what the sandboxes took.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.lib import cpu
from devkit.fleet import Fleet

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Baseline:
    rate: float  # events/s
    seconds: float
    cpu_s: float  # the loop's own process
    sandboxes_cpu_s: float  # this process over the same time: the sandboxes
    failed_writes: int


async def run_floor(f: Fleet, events: int, *, crm: bool, name: str) -> Baseline:
    spec = {
        "kafka": f.kafka,
        "topic": f.env["TOPIC_EVALUATIONS"],
        "status_topic": f"{f.env['TOPIC_STATUS']}.{name}",
        "events": events,
        "crm": crm,
        "destinations": list(f.destinations),
        "secrets_dir": str(f.tmp / "secrets"),
        "ca_file": str(f.sf.ca_file),
    }
    path = f.tmp / f"{name}.json"
    path.write_bytes(orjson.dumps(spec))
    window = cpu.Window()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.lib.floor_loop",
        str(path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=600)
    _, mine, _ = window.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited {proc.returncode}: {err.decode()[-1500:]}")
    result = orjson.loads(out.splitlines()[-1])
    return Baseline(
        result["rate"], result["seconds"], result["cpu_s"], mine, result["failed_writes"]
    )
