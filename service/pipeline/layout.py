"""The two stages' topics and groups, named in one place (docs/architecture.md: "The data path").

Stage 1 (repartition.py) reads the evaluations in KAFKA_CONSUMER_GROUP, the
group earlier versions used, so the committed offsets stay valid through an
upgrade. It writes each valid event, unchanged, to TOPIC_WORK keyed by org.

Stage 2 is the delivery pipeline (Consumer, Router, Lanes, Settler, state). It
reads TOPIC_WORK and its delay tiers in `{KAFKA_CONSUMER_GROUP}.work`. Its tiers
and watermarks changelog are keyed like the work topic, so they carry new names:
`{TOPIC_RETRY}.by-org[.5s|.25s|.2m|.10m|.1h]` and `{TOPIC_WATERMARKS}.by-org`.

The bare TOPIC_RETRY tiers and TOPIC_WATERMARKS are the layout of versions that
consumed the evaluations directly (partitioned by `org:lead`). They are only
read, when they exist, to carry an upgraded deployment's waiting retries and
watermarks over (legacy.py); nothing writes them any more.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from service.pipeline.tiers import tier_topics
from service.settings import Settings

BY_ORG = ".by-org"
WORK_GROUP_SUFFIX = ".work"
# Stage 1's client id: members with any other id in its group are an earlier
# version's consumers (cutover.py waits for them to leave).
STAGE1_CLIENT_ID = "trailspark-destinations.repartition"


@dataclass(frozen=True)
class Layout:
    evaluations: str
    work: str
    group: str  # stage 1, the earlier versions' group
    work_group: str  # stage 2
    tiers: list[str]  # stage 2's delay tiers, co-partitioned with `work`
    changelog: str  # stage 2's watermarks changelog, co-partitioned with `work`
    legacy_tiers: list[str]
    legacy_changelog: str

    @classmethod
    def of(cls, s: Settings) -> Layout:
        return cls(
            evaluations=s.topic_evaluations,
            work=s.topic_work,
            group=s.consumer_group,
            work_group=s.consumer_group + WORK_GROUP_SUFFIX,
            tiers=tier_topics(s.topic_retry + BY_ORG),
            changelog=s.topic_watermarks + BY_ORG,
            legacy_tiers=tier_topics(s.topic_retry),
            legacy_changelog=s.topic_watermarks,
        )


def stage2_settings(s: Settings) -> Settings:
    """The settings the delivery pipeline runs with: its group, tiers and changelog
    (the Settler, Restorer, state stores and TierGate read them from here)."""
    layout = Layout.of(s)
    return replace(
        s,
        consumer_group=layout.work_group,
        topic_retry=s.topic_retry + BY_ORG,
        topic_watermarks=layout.changelog,
    )
