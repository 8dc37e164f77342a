"""A real Prometheus scrapes the running service and evaluates deploy/prometheus/rules.yml.

Starts Debian's `prometheus` on a loopback port (storage in tmp_path, scraping the
service's /metrics every second, the rule file loaded), streams events through the
service (in-process, real broker, in-memory destination), then reads key series and
the recording rules back through Prometheus' HTTP API. Prometheus is always stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from devkit.factories import make_config, make_event
from devkit.harness import ServiceHarness
from tests.integration.pipeline.test_pipeline_e2e import SECRET, memories

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "rules.yml"
JOB = "trailspark-destinations"
EVENTS = 20


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def prometheus(target_port: int, tmp_path: Path) -> AsyncIterator[str]:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("prometheus not installed: run `make prometheus` (Debian's prometheus package)")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": JOB,
                        "scrape_interval": "1s",
                        "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        exe,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                assert proc.returncode is None, (tmp_path / "prometheus.log").read_text()
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/-/ready") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("Prometheus never became ready")
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


async def query(session: aiohttp.ClientSession, base: str, promql: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/api/v1/query", params={"query": promql}) as resp:
        body = await resp.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def wait_value(
    session: aiohttp.ClientSession, base: str, promql: str, want: float, timeout: float = 30
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: list[dict[str, Any]] = []
    while loop.time() < deadline:
        seen = await query(session, base, promql)
        if len(seen) == 1 and math.isclose(float(seen[0]["value"][1]), want):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{promql}: wanted one sample = {want}, Prometheus has {seen}")


@pytest.mark.slow
async def test_prometheus_scrapes_the_service_and_evaluates_the_rules(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    dests = memories("salesforce")
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations=dests) as h:
        h.write_secret("org_1-salesforce", SECRET)
        await h.put_config(make_config("salesforce"))
        async with (
            prometheus(h.service.http.port, tmp_path) as base,
            aiohttp.ClientSession() as session,
        ):
            # Scraped once before the stream, so rate() sees the counters grow from zero.
            await wait_value(session, base, f'up{{job="{JOB}"}}', 1)
            for i in range(EVENTS):  # a stream, not one batch: several scrapes see it grow
                # occurred_at now, so the latency histogram sees real delivery times.
                await h.send_event(make_event() | {"occurred_at": _now()})
                if i % 5 == 4:
                    await asyncio.sleep(0.3)
            await h.send_event(b"not json", key="org_1:lead_bad")
            await h.wait_statuses(EVENTS)
            await check_series(session, base)


async def check_series(session: aiohttp.ClientSession, base: str) -> None:
    name = "trailspark_destinations_"
    await wait_value(session, base, f"{name}events_consumed_total", EVENTS + 1)
    delivered = 'destination="salesforce",status="delivered"'
    await wait_value(session, base, f"{name}deliveries_total{{{delivered}}}", EVENTS)
    # Primed at zero: the failure series exists although nothing failed.
    failed = 'destination="salesforce",status="failed"'
    await wait_value(session, base, f"{name}deliveries_total{{{failed}}}", 0)
    await wait_value(session, base, f'{name}dlq_total{{stage="deserialize"}}', 1)
    await wait_value(session, base, f"count({name}build_info)", 1)
    await wait_value(session, base, "count(process_resident_memory_bytes > 0)", 1)
    # Recording rules, evaluated by Prometheus from the scraped series.
    ratio = f"destination:{name}delivery_success_ratio:rate5m"
    await wait_value(session, base, f'{ratio}{{destination="salesforce"}}', 1)
    p99 = f"destination:{name}delivery_latency_seconds:p99_5m"
    (sample,) = await query(session, base, f'{p99}{{destination="salesforce"}}')
    assert 0 < float(sample["value"][1]) <= 10, sample  # local in-memory writes
    # No alert fires on a healthy service.
    assert await query(session, base, 'ALERTS{alertstate="firing"}') == []
