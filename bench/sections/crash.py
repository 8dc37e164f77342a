"""7. Crash cost: CRM writes per delivered record through kill -9 and restarts.

    python -m bench.sections.crash [--quick]

10 orgs write Leads to the Salesforce sandbox from a steady stream (1,000 leads
re-evaluated several times, 5,000 events over 80 s); the service is killed with
SIGKILL at three fixed points of the stream and started again on the same
STATE_DIR. A redelivered record should be skipped (`duplicate`) by the state
store, not written twice: the cost is the records written to /composite/sobjects
per delivered (event, destination).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from time import monotonic

from bench.figures import Figure
from bench.lib.e2e import main, produce_all
from devkit.factories import make_event
from devkit.fleet import Fleet, org_id

SECTION = "7. crash cost"
ORGS, LEADS = 10, 1000


async def run(kafka: str, work: Path, quick: bool) -> list[Figure]:
    total, seconds = (1000, 10) if quick else (5000, 80)
    # Seconds into the stream. A restart takes about 20 s (the dead member's session
    # must expire before the group hands its partitions on), so each kill falls
    # about 8 s after the previous restart was ready: mid-stream, not mid-catch-up.
    kills = (4.0,) if quick else (8.0, 36.0, 64.0)
    events = [make_event(org_id(i % ORGS), f"lead_{i % LEADS}") for i in range(total)]
    (work / "crash").mkdir(exist_ok=True)  # the runner may share `work` between modules
    async with Fleet(kafka, work / "crash", orgs=ORGS, destinations=("salesforce",)) as f:
        topic = f.env["TOPIC_EVALUATIONS"]
        chunks = 50
        size = total // chunks

        async def stream() -> None:
            for n in range(chunks):
                await produce_all(kafka, topic, events[n * size : (n + 1) * size])
                await asyncio.sleep(seconds / chunks)

        streaming = asyncio.create_task(stream())
        started, restarts = monotonic(), []
        for at in kills:
            await asyncio.sleep(max(0.0, at - (monotonic() - started)))
            killed = monotonic()
            await f.kill_and_restart()
            restarts.append(monotonic() - killed)
        await streaming
        await f.wait_terminal(total, timeout=300)
        statuses = list(f.terminal.values())
        delivered = sum(1 for s in statuses if s["status"] == "delivered")
        written = sum(c.records for c in f.sf.calls if "/composite/sobjects" in c.path)
        every = dict(f.every)
    note = (
        f"{written} records written for {delivered} delivered, {len(kills)} kill -9; "
        f"every terminal status seen: {every}"
    )
    duplicates, cost = every.get(("skipped", "duplicate"), 0), written / delivered
    return [
        Figure(SECTION, "CRM writes per delivered record", cost, "", ("<=", 1.1), note),
        Figure(SECTION, "redeliveries skipped as duplicate", duplicates),
        Figure(SECTION, "restart: kill -9 to ready (longest)", max(restarts), "s"),
    ]


if __name__ == "__main__":
    main(run, __doc__)
