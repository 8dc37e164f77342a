"""Is the broker reachable? Readiness and the exit deadline (contract §7).

A metadata request every few seconds. While it fails, /readyz says not ready;
the outage is logged once when it starts, reminded every minute and logged when
it ends. Past BROKER_UNAVAILABLE_EXIT_S the service is stopped with a non-zero
exit, so Kubernetes restarts it. aiokafka retries on its own meanwhile, and
resumes where it was, with nothing lost, when the broker is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import monotonic

from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)
EVERY_S = 2.0
TIMEOUT_S = 5.0
REMIND_EVERY_S = 60.0


class BrokerWatch:
    def __init__(
        self, admin: AIOKafkaAdminClient, exit_after_s: float, give_up: Callable[[str], None]
    ) -> None:
        self.admin = admin
        self.exit_after_s = exit_after_s
        self.give_up = give_up
        self.down_since: float | None = None  # monotonic
        self._reminded = 0.0

    @property
    def reachable(self) -> bool:
        return self.down_since is None

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.admin.list_topics(), TIMEOUT_S)
            except Exception as exc:  # any failure to answer is the broker being away
                self._down(exc)
            else:
                self._up()
            await asyncio.sleep(EVERY_S)

    def _down(self, exc: BaseException) -> None:
        now = monotonic()
        if self.down_since is None:
            self.down_since = self._reminded = now
            log.warning("Kafka brokers unreachable (%s); not ready, retrying", type(exc).__name__)
            return
        away = now - self.down_since
        if away >= self.exit_after_s:
            why = f"Kafka unreachable for {away:.0f}s (BROKER_UNAVAILABLE_EXIT_S)"
            log.error("%s: exiting so that the pod is restarted", why)
            self.give_up(why)
        elif now - self._reminded >= REMIND_EVERY_S:
            self._reminded = now
            log.warning("Kafka brokers still unreachable after %.0fs", away)

    def _up(self) -> None:
        if self.down_since is not None:
            log.warning("Kafka brokers reachable again after %.1fs", monotonic() - self.down_since)
            self.down_since = None
