"""The one table of `make bench`, and the block of BENCHMARKS.md it replaces.

Pure functions over figures, except `machine()` (reads /proc) and `write_block`.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.figures import Figure, Mark

START, END = "<!-- make bench: start -->", "<!-- make bench: end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(figures: Sequence[Figure]) -> str:
    rows = ["| section | figure | value | target | | note |", "|---|---|---|---|---|---|"]
    for f in figures:
        note = f.error or f.note
        cells = (f.section, f.name, f.value_text, f.target_text, f.mark.value, note)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def summary(figures: Sequence[Figure]) -> str:
    marks = [f.mark for f in figures]
    return (
        f"{marks.count(Mark.PASS)} pass, {marks.count(Mark.FAIL)} FAIL, "
        f"{marks.count(Mark.INFO)} reported only"
    )


def _meminfo_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return 0.0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{os.cpu_count()} CPUs (nproc), {_meminfo_gb():.1f} GB RAM, {_cpu_model()}, "
        f"Python {platform.python_version()}, {when}"
    )


def block(command: str, figures: Sequence[Figure], took_s: float, plot: str | None) -> str:
    lines = [
        START,
        f"`{command}`: {machine()}; {took_s / 60:.1f} min; {summary(figures)}.",
        "",
        table(figures),
    ]
    if plot:
        lines += ["", f"![throughput and p99 latency against the number of orgs]({plot})"]
    return "\n".join([*lines, END])


def replace_block(text: str, new: str) -> str:
    """Swaps the marked block, or appends one (with a heading) when there is none."""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        return head + new + rest.split(END, 1)[1]
    return text.rstrip("\n") + "\n\n## Every figure in one run (`make bench`)\n\n" + new + "\n"


def write_block(path: Path, new: str) -> None:
    path.write_text(replace_block(path.read_text() if path.exists() else "", new))
