"""bench/plot.py: one panel per question, each in the unit its label says (issue 21)."""

from __future__ import annotations

from pathlib import Path

from bench.figures import Figure
from bench.plot import FLEET, LATENCY, REQUESTS, THROUGHPUT, draw, panels

FIGURES = [
    Figure("1", "service 200", 2200.0, "events/s", plot=("service", 200)),
    Figure("1", "service 1", 1600.0, "events/s", plot=("service", 1)),
    Figure("1", "floor 1", 4000.0, "events/s", plot=("floor", 1)),
    Figure("1", "Kafka 1", 11000.0, "events/s", plot=("Kafka alone", 1)),
    Figure("4", "p99 s", 0.827, "s", plot=("salesforce", 50)),
    Figure("4", "p99 ms", 400.0, "ms", plot=("salesforce", 20)),
    Figure("5", "per record", 0.021, REQUESTS, plot=("salesforce", 6)),
    Figure("5", "not plotted", 3.0, "cores"),
    Figure("1", "failed", 1.0, "events/s", plot=("service", 5), error="boom"),
]


def test_each_panel_holds_its_figures_in_the_unit_of_its_label() -> None:
    data = panels(FIGURES)
    assert data[THROUGHPUT] == {
        "service": [(1, 1600.0), (200, 2200.0)],
        "floor": [(1, 4000.0)],
        "Kafka alone": [(1, 11000.0)],
    }
    # p99 in seconds is drawn in ms, under a label that says ms; series name no unit
    assert LATENCY.ylabel.endswith("(ms)")
    assert data[LATENCY] == {"salesforce": [(20, 400.0), (50, 827.0)]}
    assert data[FLEET] == {"salesforce": [(6, 0.021)]}
    assert FLEET.xlabel == "instances" and THROUGHPUT.xlabel == LATENCY.xlabel == "orgs"


def test_draw_writes_a_png_and_says_when_there_is_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench.png"
    assert draw(FIGURES, out, "test") is True
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert draw([FIGURES[-2]], tmp_path / "none.png", "test") is False
