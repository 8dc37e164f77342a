"""All Prometheus metrics (contract §8), on one injected CollectorRegistry.

Labels hold only bounded values: destination ids, statuses, stages, reason
words, partition numbers. Never org ids, lead ids or record ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "trailspark_destinations_"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=r)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=r)

        # Contract metrics.
        self.events_consumed = counter("events_consumed", "Evaluation events read from Kafka")
        self.events_invalid = counter(
            "events_invalid", "Events that failed to parse or validate", ("reason",)
        )
        self.deliveries = counter(
            "deliveries", "Delivery statuses published", ("destination", "status")
        )
        self.delivery_latency = Histogram(
            PREFIX + "delivery_latency_seconds",
            "Evaluation occurred_at to terminal status",
            ("destination",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.destination_requests = counter(
            "destination_requests", "HTTP requests to destination APIs", ("destination", "outcome")
        )
        self.rate_limited = counter(
            "destination_rate_limited", "429 and quota answers from destinations", ("destination",)
        )
        self.retries = counter(
            "retries", "Deliveries scheduled for another attempt", ("destination",)
        )
        self.dlq = counter("dlq", "Events sent to the DLQ", ("stage",))
        self.configs_rejected = counter(
            "configs_rejected", "Destination configs rejected", ("reason",)
        )
        self.consumer_lag = gauge("consumer_lag", "Evaluations not yet consumed", ("partition",))
        self.inflight = gauge(
            "inflight_deliveries", "Deliveries queued or in progress", ("destination",)
        )
        self.circuit_open = gauge(
            "circuit_open", "Lanes paused by a rate-limit penalty or quota", ("destination",)
        )
        # Extensions.
        self.configs_ignored = counter(
            "configs_ignored", "Configs ignored as not newer than the one held", ("reason",)
        )
        self.configs_active = gauge("configs_active", "Destination configs held in memory")
        self.skipped = counter(
            "deliveries_skipped", "Skipped deliveries by reason", ("destination", "reason")
        )
        self.truncations = counter(
            "truncations", "Values truncated to fit a destination field", ("destination", "field")
        )
        self.propensity_unmatched = counter(
            "propensity_unmatched", "Propensity writes with no account record", ("destination",)
        )
        self.api_usage = gauge(
            "api_usage_ratio", "Share of the destination's API quota used", ("destination",)
        )
        self.retry_pending = gauge("retry_pending", "Retry records waiting for their time")
        self.ready = gauge("ready", "1 when /readyz answers ready")

    def render(self) -> bytes:
        return generate_latest(self.registry)
