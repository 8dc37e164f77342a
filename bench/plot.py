"""The plot of `make bench`: one panel per question, from the figures that carry
`plot=(series, x)` (matplotlib, Agg: no display). The figure's unit picks the panel:

- throughput against the number of orgs: a rate ("events/s"), the service with the
  floor and Kafka alone measured at the same sizes;
- p99 event->status latency against the number of orgs: "s" or "ms", drawn in ms;
- CRM requests per delivered record against the fleet size: "requests/record".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.figures import Figure

Points = dict[str, list[tuple[int, float]]]
REQUESTS = "requests/record"


@dataclass(frozen=True)
class Panel:
    title: str  # the question it answers
    xlabel: str
    ylabel: str  # with the unit the points are in
    log_x: bool


THROUGHPUT = Panel("throughput", "orgs", "events/s (every destination terminal)", True)
LATENCY = Panel("p99 latency", "orgs", "p99 event->status (ms)", True)
FLEET = Panel("CRM requests per record", "instances", "requests per delivered record", False)
PANELS = (THROUGHPUT, LATENCY, FLEET)


def place(f: Figure) -> tuple[Panel, float] | None:
    """The panel of a figure and its value in that panel's unit; None: not plotted."""
    if f.unit.endswith("/s"):
        return THROUGHPUT, f.value
    if f.unit in ("ms", "s"):
        return LATENCY, f.value * (1000 if f.unit == "s" else 1)
    if f.unit == REQUESTS:
        return FLEET, f.value
    return None


def panels(figures: Sequence[Figure]) -> dict[Panel, Points]:
    """The series of each panel, each series's points sorted by x."""
    out: dict[Panel, Points] = {p: defaultdict(list) for p in PANELS}
    for f in figures:
        placed = None if f.plot is None or f.error else place(f)
        if placed is None or f.plot is None:
            continue
        panel, value = placed
        series, x = f.plot
        out[panel][series].append((x, value))
    for data in out.values():
        for points in data.values():
            points.sort()
    return {p: dict(data) for p, data in out.items()}


def draw(figures: Sequence[Figure], out: Path, title: str) -> bool:
    """Writes the PNG; False when no figure carries a plot point."""
    data = panels(figures)
    if not any(data.values()):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, len(PANELS), figsize=(15, 4.4))
    for ax, panel in zip(axes, PANELS, strict=True):
        for series, points in sorted(data[panel].items()):
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=series)
        if panel.log_x:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        # Ticks at the measured sizes only, written 1, 200, 1000 rather than 10^k.
        ticks = sorted({x for points in data[panel].values() for x, _ in points})
        ax.set_xticks(ticks, [str(x) for x in ticks])
        ax.set_ylim(bottom=0)  # heights compare: no axis cut just below the lowest point
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if data[panel]:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True
