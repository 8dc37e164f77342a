"""Records Kafka will never accept, and what the outbox does with them.

A produce error is either transient (a retry can fix it: no leader, timeouts,
disconnects, a broker away) or a refusal that no retry changes. A refusal is
handled per record and never holds up the records after it:

- `record_too_large`, `invalid_record`, `unencodable`: this record is refused.
  A copy that fits goes to the DLQ in its place: its key and headers with no
  value, and `error.code` (the reason), `error.message`, `error.stage`
  (`produce`) and `error.topic` (where it was refused). A dead letter's own
  `error.*` headers move into `error.message`, so a record has one `error.code`.
- `topic_unauthorized`, `invalid_topic`: every record for that topic is
  refused and dropped, with an error line a minute saying records to that topic
  are being lost.

Either way the record counts as handled: its callback runs and the offset of
its source record can be committed. Every refusal is counted in
`produce_refused_total{topic_kind,reason}`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from time import monotonic

from aiokafka import errors as kafka

from service.metrics import Metrics
from service.pipeline.records import Outgoing
from service.pipeline.tiers import tier_topics
from service.settings import Settings

log = logging.getLogger(__name__)
REMIND_EVERY_S = 60.0
PRODUCE_STAGE = ("error.stage", b"produce")


class Refusal(StrEnum):
    RECORD_TOO_LARGE = "record_too_large"
    INVALID_RECORD = "invalid_record"
    UNENCODABLE = "unencodable"
    TOPIC_UNAUTHORIZED = "topic_unauthorized"
    INVALID_TOPIC = "invalid_topic"

    @property
    def whole_topic(self) -> bool:
        return self in (Refusal.TOPIC_UNAUTHORIZED, Refusal.INVALID_TOPIC)


# aiokafka's errors that no retry fixes. Everything else counts as transient,
# `retriable` or not: aiokafka marks KafkaTimeoutError (a batch that expired
# while the broker was away) non-retriable, and reports INVALID_RECORD (87),
# which it does not know, as UnknownError, like any broker-side fault. Those are
# retried; if they never clear, /healthz fails (Outbox.stalled_s).
PERMANENT: tuple[tuple[type[BaseException], Refusal], ...] = (
    (kafka.MessageSizeTooLargeError, Refusal.RECORD_TOO_LARGE),  # MESSAGE_TOO_LARGE (10)
    (kafka.RecordListTooLargeError, Refusal.RECORD_TOO_LARGE),  # RECORD_LIST_TOO_LARGE (18)
    (kafka.RecordTooLargeError, Refusal.RECORD_TOO_LARGE),
    (kafka.CorruptRecordException, Refusal.INVALID_RECORD),  # CORRUPT_MESSAGE (2), e.g. no key
    (kafka.TopicAuthorizationFailedError, Refusal.TOPIC_UNAUTHORIZED),  # (29)
    (kafka.InvalidTopicError, Refusal.INVALID_TOPIC),  # (17)
)


def classify(exc: BaseException) -> Refusal | None:
    """The refusal `exc` means, or None for an error a retry can fix."""
    for kind, refusal in PERMANENT:
        if isinstance(exc, kind):
            return refusal
    return None


class Refusals:
    """Logs and counts refused records, and makes their DLQ copies."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        *,
        dlq_topic: str | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.dlq_topic = dlq_topic
        self.kinds = dict(kinds or {})  # topic -> topic_kind label
        self._lost: dict[tuple[str, Refusal], tuple[float, int]] = {}  # last line, since

    @classmethod
    def for_settings(cls, settings: Settings, metrics: Metrics) -> Refusals:
        kinds = {topic: "retry" for topic in tier_topics(settings.topic_retry)}
        kinds |= {
            settings.topic_status: "status",
            settings.topic_dlq: "dlq",
            settings.topic_watermarks: "watermark",
        }
        return cls(metrics, dlq_topic=settings.topic_dlq, kinds=kinds)

    def refuse(
        self, record: Outgoing, partition: int | None, refusal: Refusal, cause: str
    ) -> Outgoing | None:
        """Log and count a refused record; returns the copy to send in its place."""
        kind = self.kinds.get(record.topic, "other")
        self.metrics.produce_refused.labels(kind, refusal.value).inc()
        if refusal.whole_topic:
            self._topic_lost(record.topic, refusal, cause)
            return None
        copy = self._copy(record, refusal, cause)
        log.error(
            "A record cannot be written to Kafka, ever: topic=%s partition=%s key_bytes=%d size=%s "
            "reason=%s error=%s; %s",
            record.topic,
            partition,
            len(record.key or b""),
            _size(record),
            refusal.value,
            cause,
            f"a copy without the value goes to {copy.topic}" if copy else "it is dropped",
        )
        return copy

    def _copy(self, record: Outgoing, refusal: Refusal, cause: str) -> Outgoing | None:
        headers = [(k, v) for k, v in record.headers if isinstance(v, bytes)]
        if self.dlq_topic is None or PRODUCE_STAGE in headers:
            return None  # a refused copy is not copied again
        earlier = {k: v.decode("utf-8", "replace") for k, v in headers if k.startswith("error.")}
        message = f"It could not be written to {record.topic}: {cause}; its value is dropped"
        if "error.code" in earlier:
            message += (
                f". It was a dead letter: {earlier['error.code']} "
                f"({earlier.get('error.stage', '')}): {earlier.get('error.message', '')}"
            )
        extra = {
            "error.code": refusal.value,
            "error.message": message[:1000],
            "error.stage": "produce",
            "error.topic": record.topic,
        }
        kept = [(k, v) for k, v in headers if not k.startswith("error.")]
        key = record.key if isinstance(record.key, bytes) else None
        added = [(k, v.encode()) for k, v in extra.items()]
        return Outgoing(self.dlq_topic, key, None, record.source_partition, (*kept, *added))

    def _topic_lost(self, topic: str, refusal: Refusal, cause: str) -> None:
        """One error line a minute per topic: a whole topic refuses many records."""
        now = monotonic()
        last, count = self._lost.get((topic, refusal), (None, 0))
        count += 1
        if last is not None and now - last < REMIND_EVERY_S:
            self._lost[(topic, refusal)] = (last, count)
            return
        self._lost[(topic, refusal)] = (now, 0)
        log.error(
            "Kafka refuses every record for topic %s (reason=%s error=%s): records to that "
            "topic are being lost (%d since the last line); their source offsets are "
            "committed all the same",
            topic,
            refusal.value,
            cause,
            count,
        )


def _size(record: Outgoing) -> int | str:
    try:
        return record.size()
    except TypeError:  # an unencodable record
        return "?"
