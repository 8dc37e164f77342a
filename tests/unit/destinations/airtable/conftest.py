"""The HTTPS Airtable sandbox with its rate limit lifted (the tests here are not about it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devkit.sandboxes.airtable import AirtableSandbox


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[AirtableSandbox]:
    async with AirtableSandbox(tmp_path, rate_limit=1000) as box:
        yield box
