"""Rolling upgrade from the one-stage layout: wait until its pods have left.

Pods of an earlier version consume the evaluations in KAFKA_CONSUMER_GROUP and
write watermarks and retries keyed by `org:lead`. Pods of this version start
both stages only once no such consumer is left in that group. Until then they
are ready (so a rolling update proceeds: each new pod lets an old one go) but
consume nothing, and the old pods keep delivering everything. Once the last one
has handed its partitions back, its watermarks and retries are final, and this
version carries them over (legacy.py) before it processes anything.

A member is this version's stage 1 when its client id (or, from brokers that do
not report client ids, its member id, which starts with the client id) starts
with STAGE1_CLIENT_ID. Any other member is an earlier version's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from service.pipeline.layout import STAGE1_CLIENT_ID

log = logging.getLogger(__name__)
REMIND_EVERY_S = 30.0


def earlier_members(groups: Sequence[Any]) -> list[str]:
    """Member ids of an earlier version, from DescribeGroups' `groups` (v0-v3:
    error_code, group, state, protocol_type, protocol, members, ...; a member is
    member_id, client_id, client_host, metadata, assignment)."""
    found = []
    for group in groups:
        for member in group[5]:
            member_id, client_id = str(member[0]), str(member[1])
            if not (client_id or member_id).startswith(STAGE1_CLIENT_ID):
                found.append(member_id)
    return found


async def wait_for_earlier_version(
    admin: AIOKafkaAdminClient,
    group: str,
    waiting: Callable[[], None] = lambda: None,
    every_s: float = 2.0,
) -> None:
    """Return once `group` has no member of an earlier version; `waiting` is called
    when there is one. A broker that will not describe the group (an ACL without
    DESCRIBE) is logged, and not waited for."""
    waited = 0.0
    while True:
        try:
            responses = await admin.describe_consumer_groups([group])
            old = earlier_members([g for r in responses for g in r.groups])
        except Exception as exc:  # not fatal: the upgrade guard is off, say so
            log.error("cannot describe group %s (%r): not waiting for earlier pods", group, exc)
            return
        if not old:
            if waited:
                log.info("the earlier version left group %s after %.0fs", group, waited)
            return
        if not waited:
            waiting()
        if waited % REMIND_EVERY_S < every_s:
            log.warning(
                "%d consumer(s) of an earlier version in group %s: waiting for them to "
                "leave before consuming (rolling upgrade, deploy/README.md)",
                len(old),
                group,
            )
        await asyncio.sleep(every_s)
        waited += every_s
