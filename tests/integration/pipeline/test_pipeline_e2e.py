"""The delivery pipeline end to end on a real broker (contract §2-§6),
with the in-memory destination behind the Destination protocol."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson

from devkit.factories import make_config, make_event
from devkit.harness import ServiceHarness
from service.destinations.base import Batch, Outcome
from service.destinations.memory import MemoryDestination
from service.errors import PermanentError, RateLimited, TransientError
from service.models import EvaluationCompleted

SECRET = {"access_token": "tok-" + "s" * 24}


def memories(*names: str, **kwargs: object) -> dict[str, MemoryDestination]:
    return {name: MemoryDestination(name=name, **kwargs) for name in names}  # type: ignore[arg-type]


async def connect(h: ServiceHarness, *destinations: str, org: str = "org_1") -> None:
    for name in destinations:
        h.write_secret(f"{org}-{name}", SECRET)
        await h.put_config(make_config(name, org))


async def test_one_terminal_status_per_active_destination_none_for_inactive(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    dests = memories("salesforce", "hubspot", "airtable")
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations=dests) as h:
        await connect(h, "salesforce", "hubspot")
        await h.put_config(make_config("airtable", send_evaluations=False))
        events = [make_event() for _ in range(5)]
        for event in events:
            await h.send_event(event)
        await h.send_event(make_event(org_id="org_without_destinations"))
        statuses = await h.wait_statuses(10)
        await asyncio.sleep(0.5)  # nothing more should arrive
        statuses = await h.wait_statuses(10)
    pairs = sorted((s["event_id"], s["destination"]) for s in statuses)
    assert pairs == sorted((e["event_id"], d) for e in events for d in ("salesforce", "hubspot"))
    assert {s["status"] for s in statuses} == {"delivered"}
    assert not dests["airtable"].writes
    first = next(s for s in statuses if s["event_id"] == events[0]["event_id"])
    assert first["org_id"] == "org_1" and first["lead_id"] == events[0]["lead"]["lead_id"]
    assert first["evaluated_at"] == events[0]["evaluation"]["evaluated_at"]
    assert first["attempts"] == 1 and first["completed_at"].endswith("Z")


async def test_not_connected_is_skipped_and_missing_secret_fails(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with ServiceHarness(
        kafka_bootstrap, tmp_path, destinations=memories("salesforce", "hubspot")
    ) as h:
        integration = {"id": "i", "status": "disconnected", "credentials_ref": "org_1-salesforce"}
        await h.put_config(make_config("salesforce", integration=integration))
        await h.put_config(make_config("hubspot"))  # no secret file written
        await h.send_event(make_event())
        statuses = {s["destination"]: s for s in await h.wait_statuses(2)}
    assert statuses["salesforce"]["status"] == "skipped"
    assert statuses["salesforce"]["reason"] == "integration_not_connected"
    assert statuses["hubspot"]["status"] == "failed"
    assert statuses["hubspot"]["error"]["code"] == "credentials_unavailable"
    assert statuses["hubspot"]["error"]["retryable"] is False


async def test_config_topic_rules_version_tombstone_role(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations=memories("salesforce")) as h:
        await connect(h, "salesforce")
        await h.put_config(make_config(version=3))
        await h.put_config(make_config(version=2, send_evaluations=False), wait=False)
        viewer = make_config(
            version=4, send_evaluations=False, updated_by={"user_id": "u", "role": "viewer"}
        )
        await h.put_config(viewer, wait=False)
        await h.wait_until(
            lambda: h.metric("configs_rejected_total", reason="unauthorized_role") == 1
        )
        await h.wait_until(lambda: h.metric("configs_ignored_total", reason="stale_version") == 1)
        held = h.service.store.get("org_1", "salesforce")
        assert held is not None and held.version == 3 and held.send_evaluations
        await h.send_event(first := make_event())
        assert (await h.wait_statuses(1))[0]["event_id"] == first["event_id"]
        await h.put_config(None, key="org_1:salesforce")  # tombstone
        await h.send_event(make_event())
        await h.send_event(make_event(org_id="org_2"))
        await asyncio.sleep(1.5)
        assert len(await h.wait_statuses(1)) == 1  # deleted destination: no status


async def test_invalid_events_go_to_dlq_with_headers_and_partition_moves_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    too_big = make_event(reasoning="r" * 1_100_000)
    wrong_version = {**make_event(), "schema_version": 2}
    missing = make_event()
    del missing["lead"]
    bad_field = make_event(score="scorching")
    cases = [
        (b"{not json", "invalid_json", "deserialize"),
        (b"\xff\xfe\xfa", "invalid_utf8", "deserialize"),
        (None, "null_value", "deserialize"),
        (orjson.dumps(wrong_version), "unsupported_schema_version", "validate"),
        (orjson.dumps(missing), "missing_field", "validate"),
        (orjson.dumps(bad_field), "invalid_field", "validate"),
        (orjson.dumps(too_big), "event_too_large", "deserialize"),
    ]
    async with ServiceHarness(
        kafka_bootstrap, tmp_path, destinations=memories("salesforce"), partitions=1
    ) as h:
        await connect(h, "salesforce")
        for i, (value, _, _) in enumerate(cases):
            await h.send_event(value, key=f"org_1:bad{i}", headers=[("trace", f"t{i}".encode())])
        valid = make_event()
        await h.send_event(valid)
        (status,) = await h.wait_statuses(1)
        assert status["event_id"] == valid["event_id"] and status["status"] == "delivered"
        await h.wait_until(lambda: h.metric("dlq_total", stage="validate") == 3)
        dlq = await h.dlq()
        assert h.metric("events_invalid_total", reason="invalid_json") == 1
        assert h.metric("dlq_total", stage="deserialize") == 4
        assert h.metric("events_consumed_total") == len(cases) + 1
        await h.wait_until(lambda: h.service.offsets.commit_points() == {}, 10, "final commit")
    assert len(dlq) == len(cases)
    by_key = {r.key: r for r in dlq}
    for i, (value, code, stage) in enumerate(cases):
        record = by_key[f"org_1:bad{i}".encode()]
        headers = {k: v.decode() for k, v in record.headers}
        assert record.value == value
        assert headers["trace"] == f"t{i}"
        assert headers["error.code"] == code and headers["error.stage"] == stage
        assert headers["error.message"]
        assert headers["source.topic"] == h.settings.topic_evaluations
        assert headers["source.partition"] == "0" and headers["source.offset"] == str(i)


async def test_slow_lane_does_not_delay_another_org(kafka_bootstrap: str, tmp_path: Path) -> None:
    memory = MemoryDestination(name="salesforce", slow_orgs={"org_slow": 3.0})
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations={"salesforce": memory}) as h:
        await connect(h, "salesforce", org="org_slow")
        await connect(h, "salesforce", org="org_fast")
        for _ in range(5):
            await h.send_event(make_event(org_id="org_slow"))
        await asyncio.sleep(0.2)
        fast = [make_event(org_id="org_fast") for _ in range(20)]
        started = asyncio.get_running_loop().time()
        for event in fast:
            await h.send_event(event)
        await h.wait_until(
            lambda: sum(s["org_id"] == "org_fast" for s in h.statuses) == 20, 10, "fast org"
        )
        elapsed = asyncio.get_running_loop().time() - started
        slow_done = sum(s["org_id"] == "org_slow" for s in h.statuses)
        assert elapsed < 2.5, elapsed
        assert slow_done == 0  # the slow org is still in its first batch
        await h.wait_statuses(25, timeout=20)


async def test_transient_errors_retry_through_the_retry_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    failures: dict[str, int] = {}

    def flaky(event: EvaluationCompleted) -> TransientError | None:
        failures[event.event_id] = failures.get(event.event_id, 0) + 1
        if failures[event.event_id] <= 2:
            return TransientError("503 from upstream", code="server_error", http_status=503)
        return None

    memory = MemoryDestination(name="salesforce", fault=flaky)
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations={"salesforce": memory}) as h:
        await connect(h, "salesforce")
        await h.send_event(event := make_event())
        (final,) = await h.wait_statuses(1, timeout=30)
        progress = [s for s in h.statuses if s["status"] == "retrying"]
    assert final["status"] == "delivered" and final["attempts"] == 3
    assert [s["attempts"] for s in progress] == [1, 2]
    assert progress[0]["error"] == {
        "code": "server_error",
        "message": "503 from upstream",
        "retryable": True,
        "http_status": 503,
    }
    assert h.metric("retries_total", destination="salesforce") == 2
    assert memory.writes == [event["event_id"]]


async def test_permanent_fails_at_once_and_attempts_are_capped(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    def fault(event: EvaluationCompleted) -> PermanentError | TransientError:
        if event.lead.lead_id == "bad":
            return PermanentError(
                "INVALID_FIELD: No such column", code="invalid_field", http_status=400
            )
        return TransientError("timeout", code="timeout")

    memory = MemoryDestination(name="salesforce", fault=fault)
    env = {"MAX_ATTEMPTS": "3"}
    async with ServiceHarness(
        kafka_bootstrap, tmp_path, destinations={"salesforce": memory}, env=env
    ) as h:
        await connect(h, "salesforce")
        await h.send_event(make_event(lead_id="bad"))
        await h.send_event(make_event(lead_id="flaky"))
        statuses = {s["lead_id"]: s for s in await h.wait_statuses(2, timeout=30)}
    assert statuses["bad"]["status"] == "failed" and statuses["bad"]["attempts"] == 1
    assert statuses["bad"]["error"]["message"] == "INVALID_FIELD: No such column"
    assert statuses["flaky"]["status"] == "failed" and statuses["flaky"]["attempts"] == 3
    assert statuses["flaky"]["error"]["code"] == "timeout"
    assert "gave up after 3 attempts" in statuses["flaky"]["error"]["message"]


async def test_stale_evaluation_is_skipped_also_after_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    older = make_event(lead_id="ada", evaluated_at="2026-11-22T09:00:00Z")
    newer = make_event(lead_id="ada", evaluated_at="2026-11-22T10:00:00Z")
    memory = MemoryDestination(name="salesforce")
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations={"salesforce": memory}) as h:
        await connect(h, "salesforce")
        await h.send_event(newer)
        await h.wait_statuses(1)
        env = h.env
    # A new process (same topics and group): the watermark comes back from Kafka.
    memory2 = MemoryDestination(name="salesforce")
    async with ServiceHarness(
        kafka_bootstrap, tmp_path, destinations={"salesforce": memory2}, env=env
    ) as h2:
        await h2.send_event(older)
        statuses = await h2.wait_statuses(2)
    late = next(s for s in statuses if s["event_id"] == older["event_id"])
    assert late["status"] == "skipped" and late["reason"] == "stale_evaluation"
    assert memory2.writes == []


async def test_metrics_endpoint_and_probes_over_http(kafka_bootstrap: str, tmp_path: Path) -> None:
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations=memories("salesforce")) as h:
        await connect(h, "salesforce")
        await h.send_event(make_event())
        await h.wait_statuses(1)
        base = f"http://127.0.0.1:{h.service.http.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/readyz") as resp:
                assert resp.status == 200
            async with session.get(f"{base}/healthz") as resp:
                assert resp.status == 200
            async with session.get(f"{base}/metrics") as resp:
                text = await resp.text()
    for name in (
        "events_consumed_total",
        "deliveries_total",
        "delivery_latency_seconds_bucket",
        "configs_rejected_total",
        "consumer_lag",
        "inflight_deliveries",
    ):
        assert f"trailspark_destinations_{name}" in text, name
    assert (
        'trailspark_destinations_deliveries_total{destination="salesforce",status="delivered"} 1.0'
        in text
    )
    assert "org_1" not in text  # no unbounded labels


async def test_waiting_retry_survives_a_restart(kafka_bootstrap: str, tmp_path: Path) -> None:
    down = MemoryDestination(
        name="salesforce", fault=lambda e: TransientError("502", code="server_error")
    )
    env = {"RETRY_BACKOFF_BASE_S": "3"}
    async with ServiceHarness(
        kafka_bootstrap, tmp_path, destinations={"salesforce": down}, env=env
    ) as h:
        await connect(h, "salesforce")
        await h.send_event(event := make_event())
        await h.wait_statuses(1, terminal=False)  # the `retrying` progress status
        env = h.env
    assert h.statuses[0]["status"] == "retrying"
    up = MemoryDestination(name="salesforce")
    async with ServiceHarness(
        kafka_bootstrap, tmp_path, destinations={"salesforce": up}, env=env
    ) as h2:
        (final,) = await h2.wait_statuses(1, timeout=30)
    assert final["event_id"] == event["event_id"]
    assert final["status"] == "delivered" and final["attempts"] == 2
    assert up.writes == [event["event_id"]]


class ThrottledOnce(MemoryDestination):
    """Answers the first write with a whole-batch 429 (backpressure)."""

    throttled: int = 0

    async def write(self, batch: Batch) -> list[Outcome]:
        if not self.throttled:
            self.throttled += 1
            raise RateLimited("429 Too Many Requests", retry_after=0.5)
        return await super().write(batch)


async def test_short_429_is_waited_out_in_the_lane(kafka_bootstrap: str, tmp_path: Path) -> None:
    memory = ThrottledOnce(name="salesforce")
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations={"salesforce": memory}) as h:
        await connect(h, "salesforce")
        events = [make_event() for _ in range(3)]
        for event in events:
            await h.send_event(event)
        statuses = await h.wait_statuses(3)
        assert h.metric("retries_total", destination="salesforce") == 0
    assert memory.throttled == 1
    assert {s["status"] for s in statuses} == {"delivered"}
    assert {s["attempts"] for s in statuses} == {1}
    assert not [s for s in h.statuses if s["status"] == "retrying"]
