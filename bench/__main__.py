"""make bench: every benchmark module, one broker, one table, one plot.

    python -m bench [--quick] [--only throughput,ceilings] [--write]

Each module in MODULES (bench/sections/) exposes `async def run(kafka, work, quick) -> list[Figure]`
(bench/figures.py). A module that is missing or fails is reported as a FAIL row
and the run goes on. A full run writes the table into BENCHMARKS.md (between
the markers) and the plot to docs/bench.png; --quick writes them only with --write.
`--only` takes module names or their 1-based positions in MODULES (the issue's
section numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from tqdm import tqdm

from bench import plot, report
from bench.figures import Figure
from devkit.broker import local_broker

# In the section order (1-7). A module not on this branch yet is a FAIL row
# ("no such module") and the run goes on; `--only 1,2,3` leaves it out.
MODULES = [
    "throughput",
    "api_calls",
    "ceilings",
    "latency",
    "memory",
    "scaleout",
    "crash",
]
ROOT = Path(__file__).resolve().parent.parent
PLOT = Path("docs/bench.png")
MISSING = "no such module (not on this branch yet?)"
Runner = Callable[[str, Path, bool], Awaitable[list[Figure]]]


def chosen(only: str | None) -> list[str]:
    if not only:
        return list(MODULES)
    picked = []
    for word in (w.strip() for w in only.split(",") if w.strip()):
        name = MODULES[int(word) - 1] if word.isdigit() and 0 < int(word) <= len(MODULES) else word
        if name not in picked:
            picked.append(name)
    return picked


async def run_one(name: str, kafka: str, work: Path, quick: bool) -> list[Figure]:
    try:
        module = importlib.import_module(f"bench.sections.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.sections.{name}":
            raise
        tqdm.write(f"bench.{name}: no such module, skipped")
        return [Figure(name, "module", 0, error=MISSING)]
    runner = cast(Runner, module.run)
    (work / name).mkdir(parents=True, exist_ok=True)
    return await runner(kafka, work / name, quick)


async def run_all(names: list[str], kafka: str, work: Path, quick: bool) -> list[Figure]:
    figures: list[Figure] = []
    for name in (bar := tqdm(names, unit="module", file=sys.stderr)):
        bar.set_description(name)
        started = time.monotonic()
        try:
            got = await run_one(name, kafka, work, quick)
        except Exception as exc:  # one benchmark's failure must not end the run
            tqdm.write(f"bench.{name} failed:\n{traceback.format_exc()}")
            got = [Figure(name, "did not finish", 0, error=f"{type(exc).__name__}: {exc}"[:200])]
        tqdm.write(f"bench.{name}: {len(got)} figures in {time.monotonic() - started:.0f} s")
        figures += got
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (make bench-quick)")
    parser.add_argument("--only", help="comma-separated module names or section numbers")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md with --quick")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a new temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-"))
    command = "python -m bench" + " --quick" * args.quick + f" --only {args.only}" * bool(args.only)
    started = time.monotonic()
    with local_broker() as kafka:
        figures = asyncio.run(run_all(chosen(args.only), kafka, work, args.quick))
    took = time.monotonic() - started
    print(report.table(figures))
    print(f"\n{report.summary(figures)}; {took / 60:.1f} min; scratch {work}")
    write = args.write or not args.quick
    out = ROOT / PLOT if write else work / "bench.png"
    drawn = plot.draw(figures, out, f"{command}: {report.machine()}")
    print(f"plot: {out}" if drawn else "plot: no figure carries a plot point")
    if write:
        block = report.block(command, figures, took, str(PLOT) if drawn else None)
        report.write_block(ROOT / "BENCHMARKS.md", block)
        print("BENCHMARKS.md: table written between its make-bench markers")
    # A module that raised fails the command; one not written yet is only reported.
    return 1 if any(f.error and f.error != MISSING for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
