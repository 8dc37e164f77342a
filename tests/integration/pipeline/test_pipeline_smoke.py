from __future__ import annotations

from pathlib import Path

from devkit.factories import make_config, make_event
from devkit.harness import ServiceHarness
from service.destinations.memory import MemoryDestination


async def test_one_event_one_status(kafka_bootstrap: str, tmp_path: Path) -> None:
    memory = MemoryDestination(name="salesforce")
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations={"salesforce": memory}) as h:
        h.write_secret("org_1-salesforce", {"access_token": "x" * 20})
        await h.put_config(make_config("salesforce"))
        event = make_event()
        await h.send_event(event)
        (status,) = await h.wait_statuses(1)
    assert status["event_id"] == event["event_id"]
    assert status["status"] == "delivered"
    assert memory.writes == [event["event_id"]]
