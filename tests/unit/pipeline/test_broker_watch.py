"""The broker watch without a broker: not reachable from the first failed request,
reachable again at the first answer, and past the deadline the service gives up."""

from __future__ import annotations

import asyncio

import pytest

from service.pipeline import broker_watch
from service.pipeline.broker_watch import BrokerWatch


class FlakyAdmin:
    """Answers as `script` says (True: answers, False: fails), then stops the loop;
    each request moves the clock by 10 s."""

    def __init__(self, script: list[bool], clock: list[float]) -> None:
        self.script = script
        self.clock = clock
        self.seen: list[bool] = []  # watch.reachable before each request

    async def list_topics(self) -> list[str]:
        if not self.script:
            raise asyncio.CancelledError
        self.clock[0] += 10.0
        if self.script.pop(0):
            return []
        raise ConnectionError("no broker")


async def watch(
    script: list[bool], exit_after_s: float, monkeypatch: pytest.MonkeyPatch
) -> tuple[BrokerWatch, list[str], list[bool]]:
    clock = [1000.0]
    monkeypatch.setattr(broker_watch, "monotonic", lambda: clock[0])
    monkeypatch.setattr(broker_watch, "EVERY_S", 0.0)
    admin = FlakyAdmin(script, clock)
    reasons: list[str] = []
    w = BrokerWatch(admin, exit_after_s, reasons.append)  # type: ignore[arg-type]
    states: list[bool] = []
    original = admin.list_topics

    async def recording() -> list[str]:
        states.append(w.reachable)
        return await original()

    admin.list_topics = recording  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await w.run()
    return w, reasons, states


async def test_an_outage_is_not_ready_until_the_broker_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, reasons, states = await watch([True, False, False, True], 300.0, monkeypatch)
    assert states == [True, True, False, False, True]  # before each request (and the stop)
    assert w.reachable and w.down_since is None and reasons == []


async def test_past_the_deadline_the_service_gives_up_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, reasons, _ = await watch([False] * 5, 25.0, monkeypatch)
    # Down from the first failure (t=1010); 30 s later (t=1040) is past 25 s.
    assert reasons and "BROKER_UNAVAILABLE_EXIT_S" in reasons[0] and "30s" in reasons[0]
