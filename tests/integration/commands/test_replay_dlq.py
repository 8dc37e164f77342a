"""`python -m service replay-dlq`: filters, headers, dry run, CLI errors, and a
round trip through the running service, all against the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import subprocess
import sys
import termios
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devkit.factories import make_config, make_event
from devkit.harness import ServiceHarness, read_topic, topic_env
from service.commands.replay import ReplayFilter, replay, replay_headers
from service.commands.replay_cli import parse_args, rfc3339_ms
from service.destinations.memory import MemoryDestination
from service.settings import Settings

T0 = int(datetime(2026, 11, 22, 10, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
DLQ_HEADERS = [
    ("trace-id", b"abc"),
    ("error.code", b"invalid_json"),
    ("error.message", b"Expecting value"),
    ("error.stage", b"deserialize"),
    ("source.topic", b"trailspark.evaluations.completed"),
    ("source.partition", b"0"),
    ("source.offset", b"41"),
]


def test_filter_and_headers() -> None:
    by_org = ReplayFilter(org_id="org_a")
    assert by_org.skip_reason(b"org_a:lead_1", T0) is None
    assert by_org.skip_reason(b"org_ab:lead_1", T0) == "other_org"
    assert by_org.skip_reason(None, T0) == "other_org"
    window = ReplayFilter(since_ms=T0, until_ms=T0 + MINUTE)
    assert window.skip_reason(b"k", T0) is None  # since is inclusive
    assert window.skip_reason(b"k", T0 - 1) == "before_since"
    assert window.skip_reason(b"k", T0 + MINUTE) == "not_before_until"  # until is exclusive
    assert ReplayFilter().skip_reason(None, 0) is None
    assert replay_headers(DLQ_HEADERS) == [("trace-id", b"abc")]
    assert replay_headers(None) == []


def test_times_and_arguments() -> None:
    assert rfc3339_ms("2026-11-22T10:00:00Z") == T0
    assert rfc3339_ms("2026-11-22T11:00:00.000+01:00") == T0
    assert rfc3339_ms("2026-11-22t10:00:00z") == T0
    args = parse_args(["--org", "org_a", "--since", "2026-11-22T10:00:00Z", "--dry-run"])
    assert (args.org, args.since, args.until, args.dry_run) == ("org_a", T0, None, True)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--since", "yesterday"], "argument --since: not an RFC 3339 time: 'yesterday'"),
        (["--until", "2026-11-22T10:00:00"], "needs a UTC offset or Z"),
        (["--org", "org:a"], "argument --org: not an org id"),
        (
            ["--since", "2026-11-22T10:00:00Z", "--until", "2026-11-22T09:00:00Z"],
            "--since must be earlier than --until",
        ),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_a_bad_argument_exits_2_with_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("replay-dlq: ")
    assert expected in err


async def make_topics(bootstrap: str) -> dict[str, str]:
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, **topic_env(f"r{uuid.uuid4().hex[:10]}")}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(env["TOPIC_DLQ"], 2, 1), NewTopic(env["TOPIC_EVALUATIONS"], 3, 1)]
        )
    finally:
        await admin.close()
    return env


async def fill_dlq(bootstrap: str, topic: str) -> None:
    """Four dead-lettered records: org_a at T0 and T0+2m, org_b at T0+1m, no key at T0+3m."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for key, value, at in (
            (b"org_a:lead_1", b"{not json", T0),
            (b"org_b:lead_2", b'{"schema_version": 9}', T0 + MINUTE),
            (b"org_a:lead_3", b'{"schema_version": 1}', T0 + 2 * MINUTE),
            (None, b"", T0 + 3 * MINUTE),
        ):
            await producer.send_and_wait(
                topic, value, key, timestamp_ms=at, headers=list(DLQ_HEADERS)
            )
    finally:
        await producer.stop()


async def test_replay_filters_headers_and_dry_run(kafka_bootstrap: str) -> None:
    env = await make_topics(kafka_bootstrap)
    await fill_dlq(kafka_bootstrap, env["TOPIC_DLQ"])
    settings = Settings.kafka_from_env(env)
    totals: list[int] = []
    steps: list[int] = []

    dry = await replay(
        settings, ReplayFilter(), dry_run=True, on_total=totals.append, on_read=steps.append
    )
    assert (dry.read, dry.replayed, dry.codes["invalid_json"]) == (4, 4, 4)
    assert totals == [4] and sum(steps) == 4
    assert await read_topic(kafka_bootstrap, env["TOPIC_EVALUATIONS"]) == []
    assert (
        dry.lines(env["TOPIC_DLQ"], "evals")[1] == "would replay 4 to evals (dry run: nothing sent)"
    )

    window = ReplayFilter(org_id="org_a", since_ms=T0 + 1, until_ms=T0 + 3 * MINUTE)
    summary = await replay(settings, window)
    assert (summary.read, summary.replayed) == (4, 1)
    assert summary.skipped == {"other_org": 2, "before_since": 1}
    (replayed,) = await read_topic(kafka_bootstrap, env["TOPIC_EVALUATIONS"])
    assert (replayed.key, replayed.value) == (b"org_a:lead_3", b'{"schema_version": 1}')
    assert list(replayed.headers) == [("trace-id", b"abc")]

    everything = await replay(settings, ReplayFilter())
    assert everything.replayed == 4 and not everything.skipped and not everything.incomplete
    records = await read_topic(kafka_bootstrap, env["TOPIC_EVALUATIONS"])
    assert sorted((r.key or b"", r.value) for r in records) == sorted(
        [
            (b"org_a:lead_3", b'{"schema_version": 1}'),
            (b"org_a:lead_1", b"{not json"),
            (b"org_b:lead_2", b'{"schema_version": 9}'),
            (b"org_a:lead_3", b'{"schema_version": 1}'),
            (b"", b""),
        ]
    )


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "replay-dlq", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_cli_process_summary_dry_run_and_errors(kafka_bootstrap: str) -> None:
    env = await make_topics(kafka_bootstrap)
    await fill_dlq(kafka_bootstrap, env["TOPIC_DLQ"])
    # No SECRETS_DIR exists at its default path here: the tool does not need it.
    dry = run_cli("--org", "org_a", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"replay-dlq: read 4 records from {env['TOPIC_DLQ']} (up to its end offsets at start)",
        f"replay-dlq: would replay 2 to {env['TOPIC_EVALUATIONS']} (dry run: nothing sent)",
        "replay-dlq: skipped 2: other_org 2",
        "replay-dlq: would replay by error.code: invalid_json 2",
    ]
    assert "rec/s" not in dry.stderr  # no progress bar without a terminal
    assert await read_topic(kafka_bootstrap, env["TOPIC_EVALUATIONS"]) == []

    done = run_cli("--until", "2026-11-22T10:01:00Z", env=env)
    assert done.returncode == 0, done.stderr
    assert f"replay-dlq: replayed 1 to {env['TOPIC_EVALUATIONS']}" in done.stdout.splitlines()
    (record,) = await read_topic(kafka_bootstrap, env["TOPIC_EVALUATIONS"])
    assert record.key == b"org_a:lead_1"

    bad_time = run_cli("--since", "10:00", env=env)
    assert bad_time.returncode == 2 and bad_time.stdout == ""
    assert bad_time.stderr.strip().splitlines() == [
        "replay-dlq: argument --since: not an RFC 3339 time: '10:00' "
        "(for example 2026-11-22T10:15:00Z) (see --help)"
    ]
    no_broker = run_cli(env={**env, "KAFKA_BOOTSTRAP_SERVERS": ""})
    assert no_broker.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in no_broker.stderr.strip()
    missing = run_cli(env={**env, "TOPIC_DLQ": "no.such.dlq"})
    assert missing.returncode == 1
    assert missing.stderr.strip() == "replay-dlq: the DLQ topic 'no.such.dlq' does not exist"


async def test_replayed_events_go_through_the_service(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A still-invalid event returns to the DLQ (with fresh error headers, once);
    a dead-lettered event that is valid now is delivered."""
    memory = MemoryDestination(name="salesforce")
    async with ServiceHarness(kafka_bootstrap, tmp_path, destinations={"salesforce": memory}) as h:
        h.write_secret("org_1-salesforce", {"access_token": "tok"})
        await h.put_config(make_config())
        await h.send_event(b"{broken", key="org_1:lead_x", headers=[("trace-id", b"t1")])
        await h.wait_until(lambda: h.metric("dlq_total", stage="deserialize") == 1, 30, "DLQ")
        fixed = make_event()
        producer = h.producer  # as if an older release had dead-lettered a good event
        await producer.send_and_wait(
            h.settings.topic_dlq,
            orjson.dumps(fixed),
            f"org_1:{fixed['lead']['lead_id']}".encode(),
            headers=[("error.code", b"invalid_field"), ("source.offset", b"7")],
        )
        settings = Settings.kafka_from_env(h.env)
        summary = await replay(settings, ReplayFilter(org_id="org_1"))
        assert (summary.read, summary.replayed) == (2, 2)
        assert summary.codes == {"invalid_json": 1, "invalid_field": 1}
        (status,) = await h.wait_statuses(1)
        await h.wait_until(lambda: h.metric("dlq_total", stage="deserialize") == 2, 30, "DLQ")
        dlq = await h.dlq()
    assert (status["event_id"], status["status"]) == (fixed["event_id"], "delivered")
    first, again = sorted(
        (r for r in dlq if r.value == b"{broken"), key=lambda r: (r.partition, r.offset)
    )
    assert len(dlq) == 3 and again.key == b"org_1:lead_x"
    names = [name for name, _ in again.headers]
    assert names.count("error.code") == 1 and names.count("source.offset") == 1
    assert dict(again.headers)["trace-id"] == b"t1"
    assert dict(again.headers)["error.code"] == b"invalid_json"
    assert dict(again.headers)["source.offset"] != dict(first.headers)["source.offset"]


async def test_progress_bar_on_a_terminal_only(kafka_bootstrap: str) -> None:
    env = await make_topics(kafka_bootstrap)
    await fill_dlq(kafka_bootstrap, env["TOPIC_DLQ"])
    leader, follower = os.openpty()  # stderr is a terminal here, 100 columns wide
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "service", "replay-dlq", "--dry-run"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            check=False,
        )
        os.set_blocking(leader, False)
        shown = b""
        with contextlib.suppress(BlockingIOError, OSError):
            while chunk := os.read(leader, 65536):
                shown += chunk
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 0
    assert b"replay-dlq: 100%" in shown and b"4/4" in shown
    assert b"would replay 4" in proc.stdout and b"%" not in proc.stdout
