"""The broker away (contract §7, issue 11), against the real process: not ready
while it is away, ready again after, nothing lost, no flood of log lines; past
BROKER_UNAVAILABLE_EXIT_S the process exits non-zero. The broker is cut off by a
proxy on its advertised port, which comes back on the same port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from time import monotonic

import aiohttp
import pytest

from devkit.broker import free_port, tansu
from devkit.factories import make_event
from devkit.harness import create_input_topics
from devkit.tcp_proxy import CuttableProxy
from tests.integration.test_process_lifecycle import process_env, produce, start, wait_for_ids

pytestmark = pytest.mark.slow


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[str, CuttableProxy]]:
    broker, listen = free_port(), free_port()
    with tansu(broker, advertised_port=listen):
        proxy = CuttableProxy(listen, broker)
        await proxy.start()
        try:
            yield f"127.0.0.1:{listen}", proxy
        finally:
            await proxy.cut()


async def readyz(port: str) -> int:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as r,
        ):
            return r.status
    except aiohttp.ClientError:
        return 0


async def wait_status(port: str, want: int, timeout: float) -> float:
    started = monotonic()
    while await readyz(port) != want:
        assert monotonic() - started < timeout, f"/readyz never answered {want}"
        await asyncio.sleep(0.2)
    return monotonic() - started


async def test_ten_seconds_away_not_ready_then_ready_and_nothing_lost(
    tmp_path: Path, proxied: tuple[str, CuttableProxy]
) -> None:
    bootstrap, proxy = proxied
    env = process_env(bootstrap, tmp_path)
    await create_input_topics(bootstrap, env)
    log = tmp_path / "service.log"
    proc = start(env, log)
    try:
        await wait_status(env["HTTP_PORT"], 200, 60)
        await produce(bootstrap, env["TOPIC_EVALUATIONS"], [make_event() for _ in range(30)])
        await wait_for_ids(bootstrap, env, 30, 30)
        await proxy.cut()
        went = await wait_status(env["HTTP_PORT"], 503, 10)
        await asyncio.sleep(max(0.0, 10 - went))
        await proxy.start()
        back = await wait_status(env["HTTP_PORT"], 200, 60)
        await produce(bootstrap, env["TOPIC_EVALUATIONS"], [make_event() for _ in range(30)])
        ids = await wait_for_ids(bootstrap, env, 60, 60)
    finally:
        proc.terminate()
        code = await asyncio.to_thread(proc.wait, 30)
    lines = log.read_text().splitlines()
    kafka_lines = [line for line in lines if "aiokafka" in line]
    print(
        f"\nnot ready {went:.1f}s after the cut, ready {back:.1f}s after it came back; "
        f"{len(kafka_lines)} aiokafka log lines"
    )
    assert len(ids) == 60 and code == 0
    assert any("unreachable" in line for line in lines)
    assert any("reachable again" in line for line in lines)
    assert len(kafka_lines) <= 30  # not a flood


async def test_away_past_the_deadline_exits_non_zero(
    tmp_path: Path, proxied: tuple[str, CuttableProxy]
) -> None:
    bootstrap, proxy = proxied
    env = process_env(bootstrap, tmp_path, BROKER_UNAVAILABLE_EXIT_S="6")
    await create_input_topics(bootstrap, env)
    proc = start(env, tmp_path / "service.log")
    try:
        await wait_status(env["HTTP_PORT"], 200, 60)
        await proxy.cut()
        code = await asyncio.to_thread(proc.wait, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    assert "BROKER_UNAVAILABLE_EXIT_S" in (tmp_path / "service.log").read_text()
