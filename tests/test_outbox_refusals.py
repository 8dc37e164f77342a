"""Produce errors told apart: refusals no retry fixes, and errors a retry can
fix (issue 19, finding 8); each refusal reason is a metric label from the start."""

from __future__ import annotations

import pytest
from aiokafka import errors as kafka

from service.metrics import PRODUCE_REFUSALS, Metrics
from service.pipeline.refusals import Refusal, classify


def refused(metrics: Metrics, kind: str, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "trailspark_destinations_produce_refused_total", {"topic_kind": kind, "reason": reason}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("error", "refusal"),
    [
        (kafka.MessageSizeTooLargeError(), Refusal.RECORD_TOO_LARGE),
        (kafka.RecordListTooLargeError(), Refusal.RECORD_TOO_LARGE),
        (kafka.CorruptRecordException(), Refusal.INVALID_RECORD),
        (kafka.TopicAuthorizationFailedError("t"), Refusal.TOPIC_UNAUTHORIZED),
        (kafka.InvalidTopicError(), Refusal.INVALID_TOPIC),
        # Retried: a broker away, a leader moving, a batch that expired meanwhile,
        # and UnknownError (also how aiokafka reports INVALID_RECORD, code 87).
        (kafka.NotLeaderForPartitionError(), None),
        (kafka.LeaderNotAvailableError(), None),
        (kafka.RequestTimedOutError(), None),
        (kafka.NotEnoughReplicasError(), None),
        (kafka.UnknownTopicOrPartitionError(), None),
        (kafka.KafkaConnectionError(), None),
        (kafka.KafkaTimeoutError(), None),
        (kafka.UnknownError(), None),
        (TimeoutError(), None),
    ],
)
def test_permanent_refusals_and_transient_errors_are_told_apart(
    error: BaseException, refusal: Refusal | None
) -> None:
    assert classify(error) is refusal


def test_refusal_reasons_are_primed_metric_labels() -> None:
    assert {r.value for r in Refusal} == set(PRODUCE_REFUSALS)
    assert refused(Metrics(), "dlq", "record_too_large") == 0.0  # exported before any refusal
    sample = Metrics().registry.get_sample_value
    name = "trailspark_destinations_produce_refused_total"
    assert sample(name, {"topic_kind": "status", "reason": "topic_unauthorized"}) == 0.0
