"""`make run` without a terminal: the demo plays its scenes, and SIGINT (Ctrl-C)
prints the summary and stops the service, the sandboxes and the broker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys

import pytest

EXPECTED = {  # what each scene shows in the feed
    "second org": re.compile(r"\+ (hubspot|airtable) +delivered org_acme/lead_margaret"),
    "burst": re.compile(r"\+ hubspot +delivered org_acme/lead_burst_039"),
    "429 waited out": re.compile(r"… service: hubspot rate limited; lane waits 3\.0s"),
    "stale skipped": re.compile(r"~ salesforce skipped +org_demo/lead_ada +stale_evaluation"),
    "DLQ": re.compile(r"! DLQ +invalid +org_demo:lead_x +invalid_json \(deserialize\)"),
    "circuit opens": re.compile(r"… service: circuit opened for hubspot \(org_demo-hubspot\)"),
    "a probe fails": re.compile(r"» probe failed \(503\): the circuit stays open"),
    "circuit closes": re.compile(r"… service: circuit closed for hubspot \(org_demo-hubspot\)"),
    "scenes done": re.compile(r"» all scenes played"),
    "check-config": re.compile(r"» +check-config: 4 problem\(s\) in 3 of 3 config\(s\)"),
}


def listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), 0.5):
            return True
    except OSError:
        return False


@pytest.mark.slow
async def test_demo_scenes_then_sigint_summary_and_everything_stopped() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devkit.demo",
        "--every",
        "0.5",
        "--gap",
        "2",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    missing = dict(EXPECTED)
    order: list[str] = []
    try:
        async with asyncio.timeout(240):
            while missing:
                line = (await proc.stdout.readline()).decode()
                assert line, "the demo ended early:\n" + "".join(lines[-30:])
                lines.append(line)
                for name, pattern in list(missing.items()):
                    if pattern.search(line):
                        del missing[name]
                        order.append(name)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"not seen: {sorted(missing)}\n" + "".join(lines[-30:])) from None
    outage = [order.index(n) for n in ("circuit opens", "a probe fails", "circuit closes")]
    assert outage == sorted(outage), order  # open, then a failed probe, then the close
    assert not any("did not" in line or "no circuit opened" in line for line in lines)
    banner = re.search(r"broker (\S+), service http://(\S+) ", "".join(lines))
    assert banner is not None
    broker, service = banner.groups()
    proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0
    tail = out.decode().splitlines()
    start = tail.index("summary: statuses per destination")
    assert tail[start + 1].split() == ["destination", "delivered", "skipped", "failed", "retrying"]
    rows = {
        line.split()[0]: [int(n) for n in line.split()[1:]] for line in tail[start + 2 : start + 5]
    }
    assert set(rows) == {"airtable", "hubspot", "salesforce"}
    assert all(counts[0] > 0 for counts in rows.values())  # delivered
    assert rows["salesforce"][1] >= 1  # the stale evaluation
    assert "  DLQ: 1 invalid event(s)" in tail
    assert "state per (org, destination), from GET /v1/destinations:" in tail
    assert any(re.match(r"  org_acme +hubspot +v1 active .*circuit closed", t) for t in tail)
    assert [t.split(" (")[0] for t in tail[-3:]] == [
        "stopped: the service",
        "stopped: the sandboxes",
        "stopped: the broker",
    ]
    assert "stopped: the service (exit 0;" in tail[-3]
    assert not listening(service) and not listening(broker)
