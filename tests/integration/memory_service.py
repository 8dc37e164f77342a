"""`python -m tests.integration.memory_service`: the real service process, with the in-memory
destination standing in for Salesforce (for SIGTERM and kill -9 tests).
MEMORY_DELAY_S slows each batch down."""

from __future__ import annotations

import asyncio
import os
import sys

from service.__main__ import serve
from service.destinations.memory import MemoryDestination
from service.logs import configure
from service.settings import Settings

if __name__ == "__main__":
    settings = Settings.from_env()
    configure(settings.log_level, settings.log_format)
    delay = float(os.environ.get("MEMORY_DELAY_S", "0"))
    memory = MemoryDestination(name="salesforce", delay_s=delay, max_batch_size=20)
    sys.exit(asyncio.run(serve(settings, {"salesforce": memory})))
