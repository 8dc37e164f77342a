"""The HTTPS Salesforce sandbox and the destination set up against it, shared by the
tests here. Both take an optional parameter (`indirect=True`): the sandbox's keyword
arguments (`page_size=3`), the destination's options plus `timeout_s`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devkit.sandboxes.salesforce import SalesforceSandbox
from service.destinations.base import DestinationContext
from service.destinations.salesforce import SalesforceDestination, SalesforceOptions
from service.metrics import Metrics
from service.settings import Settings


def destination(
    sandbox: SalesforceSandbox, timeout_s: float | None = None, **options: Any
) -> SalesforceDestination:
    """A destination trusting the sandbox's CA; `setup()` and `close()` are the caller's."""
    timeout = {} if timeout_s is None else {"destination_timeout_s": timeout_s}
    settings = Settings(
        bootstrap_servers="unused:9092", destination_ca_file=sandbox.ca_file, **timeout
    )
    return SalesforceDestination(
        DestinationContext(settings, Metrics()), SalesforceOptions(**options)
    )


@pytest.fixture
async def sandbox(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[SalesforceSandbox]:
    async with SalesforceSandbox(tmp_path, **getattr(request, "param", {})) as sb:
        yield sb


@pytest.fixture
async def dest(
    sandbox: SalesforceSandbox, request: pytest.FixtureRequest
) -> AsyncIterator[SalesforceDestination]:
    d = destination(sandbox, **getattr(request, "param", {}))
    await d.setup()
    yield d
    await d.close()
