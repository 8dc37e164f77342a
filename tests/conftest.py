"""Shared fixtures. Kafka is real: KAFKA_BOOTSTRAP_SERVERS, else testcontainers'
Kafka when Docker answers, else the Tansu broker (devkit/broker.py). Fixtures
that more than one directory uses live here; a directory's own in its conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devkit.broker import local_broker
from devkit.sandboxes.hubspot import HubSpotSandbox


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with local_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
async def hs(tmp_path: Path) -> AsyncIterator[HubSpotSandbox]:
    """The HTTPS HubSpot sandbox, empty, in this test's tmp_path."""
    async with HubSpotSandbox(tmp_path) as sandbox:
        yield sandbox
