"""The HubSpot destination, set up against the `hs` sandbox (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import destination
from service.destinations.hubspot import HubSpotDestination


@pytest.fixture
async def dest(hs: HubSpotSandbox) -> AsyncIterator[HubSpotDestination]:
    d = destination(hs)
    await d.setup()
    yield d
    await d.close()
