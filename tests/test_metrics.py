"""BatchHistogram must expose exactly what prometheus_client's Histogram would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from service.metrics import LATENCY_BUCKETS, PREFIX, BatchHistogram, Metrics

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
