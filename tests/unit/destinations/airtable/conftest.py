"""The HTTPS Airtable sandbox with its rate limit lifted (the tests here are not about it),
and the destination opened against it, paced well under that lifted limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devkit.sandboxes.airtable import AirtableSandbox
from service.destinations.airtable import AirtableDestination
from tests.unit.destinations.airtable.test_destination import FAST, opened


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[AirtableSandbox]:
    async with AirtableSandbox(tmp_path, rate_limit=1000) as box:
        yield box


@pytest.fixture
async def dest(sandbox: AirtableSandbox) -> AsyncIterator[AirtableDestination]:
    async with opened(sandbox, **FAST) as d:
        yield d
