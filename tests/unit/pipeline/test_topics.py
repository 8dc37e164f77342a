"""Topic housekeeping without a broker (a fake admin client): partition counts,
waiting for a topic, creating what is missing with its configs, co-partitioning."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from service.pipeline import topics
from service.pipeline.layout import Layout
from service.settings import Settings

SETTINGS = Settings(bootstrap_servers="unused:9092", max_event_bytes=2_000_000)
LAYOUT = Layout.of(SETTINGS)


class FakeAdmin:
    def __init__(self, **counts: int) -> None:
        self.counts = dict(counts)  # topic -> partitions
        self.created: list[NewTopic] = []
        self.answer: Any = None
        self.race = False
        self.listed = 0

    async def list_topics(self) -> list[str]:
        self.listed += 1
        return list(self.counts)

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [
            {"topic": n, "error_code": 0, "partitions": [{}] * self.counts[n]}
            for n in names
            if n in self.counts
        ]

    async def create_topics(self, new: list[NewTopic]) -> Any:
        if self.race:
            raise TopicAlreadyExistsError()
        self.created += new
        for topic in new:
            self.counts[topic.name] = topic.num_partitions
        return self.answer or SimpleNamespace(topic_errors=[(t.name, 0, "") for t in new])


async def test_a_partition_count_is_none_for_a_missing_topic() -> None:
    admin = FakeAdmin(evaluations=6)
    assert await topics.partition_count(admin, "evaluations") == 6  # type: ignore[arg-type]
    assert await topics.partition_count(admin, "nope") is None  # type: ignore[arg-type]


async def test_waiting_for_a_topic_until_it_appears(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin()

    async def appear(_: float) -> None:
        admin.counts["configs"] = 3

    monkeypatch.setattr(topics.asyncio, "sleep", appear)
    assert await topics.wait_for_topic(admin, "configs") == 3  # type: ignore[arg-type]
    assert admin.listed == 2


async def test_the_topics_it_writes_are_created_with_their_configs() -> None:
    admin = FakeAdmin()
    work = await topics.ensure_topics(admin, SETTINGS, 4)  # type: ignore[arg-type]
    made = {t.name: t for t in admin.created}
    expected = {SETTINGS.topic_status, SETTINGS.topic_dlq, LAYOUT.work, LAYOUT.changelog}
    assert work == 4 and set(made) == expected | set(LAYOUT.tiers)
    assert made[LAYOUT.changelog].topic_configs == {"cleanup.policy": "compact"}
    tier_max = int(made[LAYOUT.tiers[0]].topic_configs["max.message.bytes"])
    assert tier_max > SETTINGS.max_event_bytes  # a whole event fits in a delay tier
    assert all(t.num_partitions == 4 for t in made.values())


async def test_an_existing_work_topic_keeps_its_count_and_nothing_is_recreated() -> None:
    admin = FakeAdmin(**{LAYOUT.work: 12})
    assert await topics.ensure_topics(admin, SETTINGS, 4) == 12  # type: ignore[arg-type]
    made = {t.name: t.num_partitions for t in admin.created}
    assert LAYOUT.work not in made and made[LAYOUT.changelog] == 12
    assert made[SETTINGS.topic_status] == 4  # the status topic follows the evaluations
    admin.created.clear()
    await topics.ensure_topics(admin, SETTINGS, 4)  # type: ignore[arg-type]
    assert admin.created == []


async def test_losing_the_creation_race_is_fine_but_a_refusal_is_not() -> None:
    admin = FakeAdmin()
    admin.race = True
    assert await topics.ensure_topics(admin, SETTINGS, 2) == 2  # type: ignore[arg-type]
    admin = FakeAdmin()
    admin.answer = SimpleNamespace(topic_errors=[(SETTINGS.topic_dlq, 41, "policy")])
    with pytest.raises(RuntimeError, match="cannot create topic"):
        await topics.ensure_topics(admin, SETTINGS, 2)  # type: ignore[arg-type]


async def test_a_tier_or_changelog_with_another_count_is_named() -> None:
    admin = FakeAdmin(**{LAYOUT.work: 6, LAYOUT.changelog: 6, LAYOUT.tiers[2]: 3})
    (problem,) = await topics.misaligned(admin, SETTINGS, 6)  # type: ignore[arg-type]
    assert LAYOUT.tiers[2] in problem and "3 partitions" in problem
    assert await topics.existing(admin, [LAYOUT.work, "gone"]) == [LAYOUT.work]  # type: ignore[arg-type]
