"""One `python -m service` process of a Fleet: its port, log, state dir, and
what a test reads off it (readiness, metrics, peak RSS, log lines)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from time import monotonic

import aiohttp
import orjson

from devkit.broker import free_port


class Instance:
    def __init__(self, name: str, env: dict[str, str], tmp: Path, module: str = "service") -> None:
        self.name = name
        self.module = module  # `python -m` this; a test double wraps `service`
        self.port = free_port()
        self.log = tmp / f"{name}.log"
        self.env = {
            **env,
            "HTTP_PORT": str(self.port),
            "STATE_DIR": str(tmp / f"state-{name}"),  # kept across restarts, like an emptyDir
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], env=self.env, stderr=out
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def kill(self) -> None:
        """kill -9: no hand-back, no commit."""
        assert self.process is not None
        self.process.kill()
        await asyncio.to_thread(self.process.wait, 30)

    async def terminate(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 60)

    async def wait_ready(self, timeout: float = 90) -> None:
        deadline = monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while monotonic() < deadline:
                assert self.running, self.log.read_text()[-3000:]
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} never became ready")

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

    async def work_partitions(self) -> int:
        """Work partitions it owns: its consumer_lag{partition} series (0 if it is away)."""
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{self.port}/metrics") as r,
            ):
                text = await r.text()
        except aiohttp.ClientError:
            return 0
        lag = "trailspark_destinations_consumer_lag{"
        return sum(1 for line in text.splitlines() if line.startswith(lag))

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


def base_env(kafka: str, secrets: Path, configs: Path, ca_file: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "SECRETS_DIR": str(secrets),
        "CONFIG_FILE": str(configs),
        "DESTINATION_CA_FILE": str(ca_file),
        "LOG_FORMAT": "json",
    }
