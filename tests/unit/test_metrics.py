"""BatchHistogram must expose exactly what prometheus_client's Histogram would."""

from __future__ import annotations

import platform
import shutil
import subprocess
from importlib.metadata import version

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from service.destinations.http import outcome_label
from service.errors import InvalidEvent
from service.metrics import (
    DLQ_STAGES,
    INVALID_REASONS,
    LATENCY_BUCKETS,
    PREFIX,
    REQUEST_OUTCOMES,
    BatchHistogram,
    Metrics,
    package_version,
)
from service.pipeline.decode import decode_event

PLATFORM_LABELS = {
    "implementation": platform.python_implementation(),
    "major": platform.python_version_tuple()[0],
    "minor": platform.python_version_tuple()[1],
    "patchlevel": platform.python_version_tuple()[2],
    "version": platform.python_version(),
}
VALUES = [0.0, 0.01, 0.011, 0.3, 1.0, 2.5, 7.0, 299.9, 5000.0]  # edges and +Inf


def test_batch_histogram_renders_like_prometheus_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("lat_seconds", "doc", "destination", LATENCY_BUCKETS, registry=ours)
    reference = Histogram(
        "lat_seconds", "doc", ("destination",), buckets=LATENCY_BUCKETS, registry=theirs
    )
    batch.observe_many("hubspot", VALUES[:4])
    batch.observe_many("hubspot", VALUES[4:])
    batch.observe_many("airtable", [0.2])
    for value in VALUES:
        reference.labels("hubspot").observe(value)
    reference.labels("airtable").observe(0.2)
    # Same lines, bar the _created timestamps, which only the reference has.
    lines = lambda r: {  # noqa: E731
        line for line in generate_latest(r).decode().splitlines() if "_created" not in line
    }
    assert lines(ours) == lines(theirs)


def test_delivery_latency_is_a_batch_histogram() -> None:
    metrics = Metrics()
    metrics.delivery_latency.observe_many("salesforce", [0.02, 0.04])
    sample = metrics.registry.get_sample_value
    name = PREFIX + "delivery_latency_seconds"
    assert sample(f"{name}_bucket", {"destination": "salesforce", "le": "0.025"}) == 1
    assert sample(f"{name}_count", {"destination": "salesforce"}) == 2
    assert abs((sample(f"{name}_sum", {"destination": "salesforce"}) or 0) - 0.06) < 1e-9


# --- What the alerts and the dashboard rely on (deploy/prometheus, deploy/grafana) ---


def test_build_info_and_process_collectors_are_on_the_injected_registry() -> None:
    metrics = Metrics(CollectorRegistry())
    sample = metrics.registry.get_sample_value
    assert sample(PREFIX + "build_info", {"version": package_version()}) == 1
    assert package_version() == version("trailspark-destinations")
    assert (sample("process_resident_memory_bytes") or 0) > 0
    assert sample("process_cpu_seconds_total") is not None
    assert sample("python_info", dict(PLATFORM_LABELS)) == 1
    # Two registries never share collectors (no global REGISTRY).
    assert Metrics().registry is not metrics.registry


def test_labelled_series_used_by_alerts_exist_at_zero_before_any_event() -> None:
    sample = Metrics().registry.get_sample_value
    for destination in ("salesforce", "hubspot", "airtable"):
        for status in ("delivered", "skipped", "failed", "retrying"):
            labels = {"destination": destination, "status": status}
            assert sample(PREFIX + "deliveries_total", labels) == 0, labels
        for outcome in REQUEST_OUTCOMES:
            labels = {"destination": destination, "outcome": outcome}
            assert sample(PREFIX + "destination_requests_total", labels) == 0, labels
        for name in (
            "destination_rate_limited_total",
            "retries_total",
            "circuit_open",
            "inflight_deliveries",
            "delivery_latency_seconds_count",
        ):
            assert sample(PREFIX + name, {"destination": destination}) == 0, name
    for stage in ("deserialize", "validate"):
        assert sample(PREFIX + "dlq_total", {"stage": stage}) == 0
    for reason in INVALID_REASONS:
        assert sample(PREFIX + "events_invalid_total", {"reason": reason}) == 0


def test_primed_label_values_cover_what_the_code_emits() -> None:
    emitted = {outcome_label(status) for status in range(100, 600)}
    assert emitted <= set(REQUEST_OUTCOMES)
    codes = set()
    for value in (None, b"x" * 101, b"\xff\xfe", b"{nope", b"[1]", b'{"schema_version": 9}'):
        with pytest.raises(InvalidEvent) as caught:
            decode_event(value, max_bytes=100)
        codes.add(caught.value.code)
        assert caught.value.stage in DLQ_STAGES
    assert codes <= set(INVALID_REASONS)
    assert len(codes) == 6


def test_consumer_lag_appears_on_assign_and_goes_on_revoke() -> None:
    metrics = Metrics()
    lag = lambda p: metrics.registry.get_sample_value(  # noqa: E731
        PREFIX + "consumer_lag", {"partition": p}
    )
    metrics.partition_assigned([0, 2])
    assert (lag("0"), lag("2"), lag("1")) == (0, 0, None)
    metrics.consumer_lag.labels("2").set(42)
    metrics.partition_assigned([2])  # a re-assignment keeps the reported value
    assert lag("2") == 42
    metrics.partition_revoked([2, 7])  # 7 was never assigned here: no error
    assert (lag("0"), lag("2")) == (0, None)
    assert 'partition="2"' not in metrics.render().decode()


def test_promtool_finds_no_problem_in_the_exposition() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (`make prometheus` installs Debian's package)")
    metrics = Metrics()
    metrics.partition_assigned([0])
    metrics.delivery_latency.observe_many("hubspot", [0.2])
    proc = subprocess.run(
        [promtool, "check", "metrics"],
        input=metrics.render(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
