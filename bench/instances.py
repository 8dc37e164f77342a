"""More `python -m service` processes beside a Fleet's own: the same consumer
group, topics, secrets and configs, each with its own HTTP_PORT and STATE_DIR.

    async with Fleet(kafka, work, orgs=100) as f, Instances(f, extra=2) as more:
        await more.settled()              # every partition owned, assignment steady
        more.pids, await more.partitions()
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from time import monotonic

import aiohttp

from service.devtools.broker import free_port
from tests.fleet import Fleet


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "service"], env=env, stderr=out)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


class Instances:
    def __init__(self, fleet: Fleet, extra: int) -> None:
        self.fleet, self.extra = fleet, extra
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    async def __aenter__(self) -> Instances:
        for n in range(1, self.extra + 1):
            port = free_port()
            env = {
                **self.fleet.process_env,
                "HTTP_PORT": str(port),
                "STATE_DIR": str(self.fleet.tmp / f"state{n}"),
            }
            self.processes.append(_spawn(env, self.fleet.tmp / f"service{n}.log"))
            self.ports.append(port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            await asyncio.to_thread(proc.wait, 60)

    @property
    def pids(self) -> list[int]:
        assert self.fleet.process is not None
        return [self.fleet.process.pid, *(p.pid for p in self.processes)]

    @property
    def all_ports(self) -> list[int]:
        return [self.fleet.port, *self.ports]

    async def scrape(self) -> list[str]:
        """Each instance's /metrics text ("" when it does not answer)."""
        texts = []
        async with aiohttp.ClientSession() as http:
            for port in self.all_ports:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                        texts.append(await r.text())
                except aiohttp.ClientError:
                    texts.append("")
        return texts

    async def partitions(self) -> list[int]:
        """Evaluation partitions each instance owns: its consumer_lag{partition} series."""
        lag = "trailspark_destinations_consumer_lag{"
        return [sum(1 for x in t.splitlines() if x.startswith(lag)) for t in await self.scrape()]

    async def consumed(self) -> list[float]:
        """events_consumed_total of each instance."""
        name = "trailspark_destinations_events_consumed_total "
        return [
            sum(float(x.rsplit(" ", 1)[1]) for x in t.splitlines() if x.startswith(name))
            for t in await self.scrape()
        ]

    async def settled(self, total: int, steady_s: float = 3.0, timeout: float = 120) -> list[int]:
        """Wait until every instance runs, `total` partitions are owned once, and the
        split has not changed for `steady_s` (the group's rebalances are over)."""
        deadline, last, since = monotonic() + timeout, [-1], monotonic()
        while monotonic() < deadline:
            for n, proc in enumerate(self.processes, 1):
                assert proc.poll() is None, _tail(self.fleet.tmp / f"service{n}.log")
            now = await self.partitions()
            if now != last:
                last, since = now, monotonic()
            elif sum(now) == total and monotonic() - since >= steady_s:
                return now
            await asyncio.sleep(0.5)
        raise AssertionError(f"partitions never settled: {last}")
