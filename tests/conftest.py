"""Shared fixtures. Kafka is real: KAFKA_BOOTSTRAP_SERVERS, else testcontainers'
Kafka when Docker answers, else the Tansu broker (devkit/broker.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devkit.broker import local_broker


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with local_broker() as bootstrap:
        yield bootstrap
