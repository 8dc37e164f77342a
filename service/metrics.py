"""All Prometheus metrics (contract §8), on one injected CollectorRegistry.

Labels hold only bounded values: destination ids, statuses, stages, reason
words, partition numbers. Never org ids, lead ids or record ids.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from contextlib import suppress
from importlib.metadata import PackageNotFoundError, version
from itertools import accumulate

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from service.models import DeliveryState, DestinationId

PREFIX = "trailspark_destinations_"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)

# Known label values, exported at zero from the start so that rate() and the alerts in
# deploy/prometheus/ see a series from the first scrape, not only after the first failure.
DESTINATIONS = tuple(d.value for d in DestinationId)
STATUSES = tuple(s.value for s in DeliveryState)
REQUEST_OUTCOMES = (  # service/destinations/http.py: outcome_label() and the network failures
    "ok",
    "client_error",
    "server_error",
    "rate_limited",
    "timeout",
    "connection_error",
    "cancelled",
)
DLQ_STAGES = ("deserialize", "validate")
INVALID_REASONS = (  # service/pipeline/decode.py and router.py
    "null_value",
    "event_too_large",
    "invalid_utf8",
    "invalid_json",
    "invalid_field",
    "missing_field",
    "unsupported_schema_version",
    "invalid_retry_record",
)
TOPIC_KINDS = ("status", "retry", "dlq", "watermark", "other")  # pipeline/refusals.py
PRODUCE_REFUSALS = (  # pipeline/refusals.py Refusal
    "record_too_large",
    "invalid_record",
    "unencodable",
    "topic_unauthorized",
    "invalid_topic",
)


def package_version() -> str:
    try:
        return version("trailspark-destinations")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


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
        self.delivery_latency = BatchHistogram(
            PREFIX + "delivery_latency_seconds",
            "Evaluation occurred_at to terminal status",
            "destination",
            LATENCY_BUCKETS,
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
        self.consumer_lag = gauge(
            "consumer_lag",
            "Work-topic records (evaluations keyed by org) not yet consumed for delivery",
            ("partition",),
        )
        self.inflight = gauge(
            "inflight_deliveries", "Deliveries queued or in progress", ("destination",)
        )
        self.circuit_open = gauge(
            "circuit_open", "Destination credentials whose circuit is open", ("destination",)
        )
        # Extensions.
        self.configs_ignored = counter(
            "configs_ignored", "Configs ignored as not newer than the one held", ("reason",)
        )
        self.configs_active = gauge("configs_active", "Destination configs held in memory")
        self.internal_errors = counter(
            "internal_errors",
            "Records whose processing raised and was contained at the record's boundary",
            ("stage",),
        )
        self.restore_failures = counter(
            "restore_failures", "State restores that failed and are retried", ()
        )
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
        self.record_cache = counter(
            "record_cache",
            "Record-id cache lookups (hit, miss) and entries dropped for a gone record",
            ("destination", "outcome"),
        )
        self.if_empty_reads = counter(
            "if_empty_reads",
            "Reads made only to learn the current values `write: if_empty` needs (records "
            "named by id, upserts: no lookup was made for them)",
            ("destination",),
        )
        self.quota_budget_exhausted = counter(
            "quota_budget_exhausted",
            "Requests refused (their deliveries deferred) as max_daily_api_share is spent",
            ("destination",),
        )
        self.token_refreshes = counter(
            "token_refreshes",
            "OAuth refresh-token grants, by outcome (ok, failed)",
            ("destination", "outcome"),
        )
        self.credentials_unavailable = counter(
            "credentials_unavailable",
            "Credentials refused or missing at read time (other_org, outside_secrets_dir, ...)",
            ("reason",),
        )
        self.retry_pending = gauge(
            "retry_pending", "Retried and deferred deliveries waiting in the delay tiers"
        )
        self.deferred = counter(
            "deferrals",
            "Deliveries deferred to a delay tier without spending an attempt",
            ("destination",),
        )
        self.produce_refused = counter(
            "produce_refused",
            "Records Kafka refused for good (each dropped, a DLQ copy sent where one fits)",
            ("topic_kind", "reason"),
        )
        self.repartitioned = counter(
            "repartitioned", "Valid evaluations written to the work topic, keyed by org (stage 1)"
        )
        self.repartition_lag = gauge(
            "repartition_lag", "Evaluations not yet read by stage 1", ("partition",)
        )
        self.ready = gauge("ready", "1 when /readyz answers ready")
        self.build_info = gauge("build_info", "Always 1; the running version", ("version",))
        self.build_info.labels(package_version()).set(1)
        # process_* (CPU, memory, fds, start time) and python_info, on this registry.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self._prime()

    def _prime(self) -> None:
        """Create every series with a known label set, at zero."""
        for destination in DESTINATIONS:
            for status in STATUSES:
                self.deliveries.labels(destination, status)
            for outcome in REQUEST_OUTCOMES:
                self.destination_requests.labels(destination, outcome)
            for family in (self.rate_limited, self.retries, self.inflight, self.circuit_open):
                family.labels(destination)
            self.if_empty_reads.labels(destination)
            self.delivery_latency.observe_many(destination, ())
        for stage in DLQ_STAGES:
            self.dlq.labels(stage)
        for reason in INVALID_REASONS:
            self.events_invalid.labels(reason)
        for kind in TOPIC_KINDS:
            for refusal in PRODUCE_REFUSALS:
                self.produce_refused.labels(kind, refusal)

    def partition_assigned(self, partitions: Iterable[int]) -> None:
        """Show lag for newly assigned work partitions before their first fetch."""
        for partition in partitions:
            self.consumer_lag.labels(str(partition))  # 0 until the consumer reports it

    def partition_revoked(self, partitions: Iterable[int]) -> None:
        """Drop lag series of partitions this replica no longer owns (no stale lag)."""
        for partition in partitions:
            with suppress(KeyError):  # never assigned here, or already removed
                self.consumer_lag.remove(str(partition))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class BatchHistogram(Collector):
    """A histogram with one label, observed a batch of values at a time.

    Exposed exactly like prometheus_client's Histogram, whose `observe` takes a
    lock and walks the buckets per value; this is the per-event hot path, so here
    a value is one bisect into plain counters (the event loop is single-threaded).
    """

    def __init__(
        self,
        name: str,
        doc: str,
        label: str,
        buckets: Iterable[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name, self._doc, self._label = name, doc, label
        self._bounds = [*buckets, float("inf")]
        self._children: dict[str, tuple[list[int], list[float]]] = {}  # counts, [sum]
        registry.register(self)

    def observe_many(self, label_value: str, values: Iterable[float]) -> None:
        child = self._children.get(label_value)
        if child is None:
            child = self._children[label_value] = ([0] * len(self._bounds), [0.0])
        counts, total = child
        bounds = self._bounds
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            total[0] += value

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self._name, self._doc, labels=[self._label])
        for label_value, (counts, total) in self._children.items():
            cumulative = accumulate(counts)
            bounds = map(floatToGoString, self._bounds)
            buckets = list(zip(bounds, cumulative, strict=True))
            family.add_metric([label_value], buckets, total[0])
        yield family
