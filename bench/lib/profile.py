"""The service's hot path: py-spy samples the live process, we rank the frames.

`record(pid, seconds, out)` runs `py-spy record --format raw` (collapsed stacks,
one `frame;frame;... count` line each) without pausing the process; `top(path)`
turns them into shares of the samples: self time per function, and the service's
own functions inclusive of what they call. Idle samples (the event loop waiting in
epoll) are left out by py-spy, so shares are of the time the service was on CPU.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

IDLE = {"selectors.py:EpollSelector.select"}
ENTRY = ("service/__main__.py", "service/app.py", "service/runtime.py")
FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, out: Path) -> str | None:
    """Samples `pid` for `seconds`; None when it worked, else why not."""
    exe = py_spy()
    if exe is None:
        return "py-spy not installed (make install)"
    args = ["record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    args += ["--rate", "97", "--format", "raw", "--nonblocking", "--output", str(out)]
    proc = await asyncio.create_subprocess_exec(
        exe, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        return f"py-spy failed ({proc.returncode}): {err.decode(errors='replace')[-300:]}"
    return None


def short(frame: str) -> str:
    """`write (service/destinations/hubspot/client.py:120)` -> `service/.../client.py:write`.
    py-spy already names files relative to sys.path (`asyncio/events.py`)."""
    m = FRAME.match(frame.strip())
    return frame.strip() if m is None else f"{m['file']}:{m['func']}"


def _ours(frame: str) -> bool:
    """A service function below the entry points (which are in every stack)."""
    file = frame.rpartition("(")[2]
    return file.startswith("service/") and not file.startswith(ENTRY)


def top(path: Path, n: int = 8) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """(samples, [(function, self share)], [(service function, inclusive share)])."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames or short(frames[-1]) in IDLE:
            continue  # the event loop waiting: py-spy --nonblocking cannot always tell
        total += int(count)
        own[short(frames[-1])] += int(count)
        for name in {short(f) for f in frames if _ours(f)}:
            inclusive[name] += int(count)
    share = 1 / total if total else 0.0
    return (
        total,
        [(k, v * share) for k, v in own.most_common(n)],
        [(k, v * share) for k, v in inclusive.most_common(n)],
    )
