"""What every end-to-end benchmark returns: figures with their targets.

Each section module under bench/sections/ exposes

    async def run(kafka: str, work: Path, quick: bool) -> list[Figure]

and `python -m bench` (make bench) gathers them into one table. A figure with no
target is reported, not judged (a profile's share, a CPU figure, a baseline rate).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Mark(StrEnum):
    PASS = "pass"
    FAIL = "FAIL"
    INFO = "-"


COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Figure:
    section: str  # "1. throughput", "4. latency", ...
    name: str  # what was measured, in a user's words
    value: float
    unit: str = ""
    target: tuple[str, float] | None = None  # (">=", 0.5): judged; None: reported only
    note: str = ""  # how, or why a target was missed
    # (series, number of orgs): a point of the plot. The unit picks the panel: a rate
    # ("events/s") goes to throughput, "ms" or "s" to p99 latency.
    plot: tuple[str, int] | None = None
    error: str = ""  # the benchmark did not finish: why (always FAIL)

    @property
    def mark(self) -> Mark:
        if self.error:
            return Mark.FAIL
        if self.target is None:
            return Mark.INFO
        op, bound = self.target
        return Mark.PASS if COMPARE[op](self.value, bound) else Mark.FAIL

    @property
    def target_text(self) -> str:
        return "" if self.target is None else f"{self.target[0]} {self.target[1]:g}"

    @property
    def value_text(self) -> str:
        if self.error:
            return "error"
        value = f"{self.value:,.3g}" if abs(self.value) < 10 else f"{self.value:,.0f}"
        return f"{value} {self.unit}".strip()
