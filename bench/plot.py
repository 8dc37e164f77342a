"""The plot of `make bench`: throughput and p99 latency against the number of orgs,
from the figures that carry `plot=(series, orgs)` (matplotlib, Agg: no display)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from bench.figures import Figure

Points = dict[str, list[tuple[int, float]]]


def panels(figures: Sequence[Figure]) -> tuple[Points, Points]:
    """(throughput series, latency series in ms), each point sorted by orgs."""
    rates: Points = defaultdict(list)
    latency: Points = defaultdict(list)
    for f in figures:
        if f.plot is None or f.error:
            continue
        series, orgs = f.plot
        if f.unit.endswith("/s"):
            rates[series].append((orgs, f.value))
        elif f.unit in ("ms", "s"):
            latency[series].append((orgs, f.value * (1000 if f.unit == "s" else 1)))
    for points in (*rates.values(), *latency.values()):
        points.sort()
    return dict(rates), dict(latency)


def draw(figures: Sequence[Figure], out: Path, title: str) -> bool:
    """Writes the PNG; False when no figure carries a plot point."""
    rates, latency = panels(figures)
    if not rates and not latency:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, data, label in (
        (left, rates, "events/s (every destination terminal)"),
        (right, latency, "p99 latency (ms)"),
    ):
        for series, points in sorted(data.items()):
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=series)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 10, 100 rather than 10^k
        ax.set_xlabel("orgs")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        if data:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True
