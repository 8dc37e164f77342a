"""`python -m tests.integration.load.restore_fault_service`: the real service process, whose state
restores fail as a broker blip makes them fail (issue 19, finding 5): while the
file FAIL_RESTORE_FILE exists, the restore consumer's `end_offsets` raises
KafkaTimeoutError. Everything else is `python -m service`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from service.__main__ import serve
from service.logs import configure
from service.pipeline.restore import Restorer
from service.settings import Settings

FLAG = Path(os.environ["FAIL_RESTORE_FILE"])
_init = Restorer.__init__


def failing() -> bool:
    return FLAG.exists()  # a stat: cheap enough to do on the loop


def _flaky_init(self: Restorer, *args: Any, **kwargs: Any) -> None:
    _init(self, *args, **kwargs)
    end_offsets = self.consumer.end_offsets

    async def flaky(partitions: Any) -> Any:
        if failing():
            raise KafkaTimeoutError("injected: the watermarks topic is unreachable")
        return await end_offsets(partitions)

    self.consumer.end_offsets = flaky  # type: ignore[method-assign]


Restorer.__init__ = _flaky_init  # type: ignore[method-assign]

if __name__ == "__main__":
    settings = Settings.from_env()
    configure(settings.log_level, settings.log_format)
    sys.exit(asyncio.run(serve(settings)))
