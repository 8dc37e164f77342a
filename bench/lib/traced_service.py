"""`python -m bench.lib.traced_service`: `python -m service` under tracemalloc.

SIGUSR1 writes a snapshot to $TRACE_SNAPSHOT (bench/micro/tenant_memory.py reads it):
what the process holds, by the allocating line, after its tenants went idle.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tracemalloc

from service.__main__ import serve
from service.logs import configure
from service.runtime import tune_gc
from service.settings import Settings


def _dump() -> None:
    import gc

    gc.collect()
    tracemalloc.take_snapshot().dump(os.environ["TRACE_SNAPSHOT"])
    print("snapshot written", file=sys.stderr, flush=True)


async def _main(settings: Settings) -> int:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump)
    return await serve(settings)


if __name__ == "__main__":
    tracemalloc.start(int(os.environ.get("TRACE_FRAMES", "12")))
    settings = Settings.from_env()
    configure(settings.log_level, settings.log_format)
    tune_gc()
    sys.exit(asyncio.run(_main(settings)))
