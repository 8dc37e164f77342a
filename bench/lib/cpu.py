"""CPU seconds of processes, from /proc (Linux): the service, the floor, ourselves.

The sandboxes run in this (the benchmark's) process, so its CPU time over a window
is what the sandboxes took, plus the fleet's status reader while the service runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def of_pid(pid: int) -> float:
    """utime + stime of a live process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS


def own() -> float:
    return time.process_time()


class Window:
    """CPU seconds of this process and of `pid` (when given) between start and stop."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid
        self.wall = time.perf_counter()
        self.mine = own()
        self.theirs = of_pid(pid) if pid else 0.0

    def stop(self) -> tuple[float, float, float]:
        """(wall seconds, our CPU seconds, the pid's CPU seconds)."""
        theirs = of_pid(self.pid) - self.theirs if self.pid else 0.0
        return time.perf_counter() - self.wall, own() - self.mine, theirs


def broker_pid(bootstrap: str) -> int | None:
    """The local Tansu broker serving `bootstrap` (its listener URL names the port);
    None for a broker we did not start (KAFKA_BOOTSTRAP_SERVERS, Docker)."""
    listener = bootstrap.split(",")[0].strip()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone, or not ours to read
        if "tansu" in cmdline and f"//{listener} " in cmdline + " ":
            return int(proc.name)
    return None
