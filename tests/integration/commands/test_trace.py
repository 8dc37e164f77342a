"""`python -m service trace`: arguments and output (pure), then the command
against the real broker, and a lead delivered by the real service to the
three sandboxes and traced back."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devkit.broker import free_port
from devkit.factories import DEFAULT_TARGETS, make_config, make_event
from devkit.harness import ServiceHarness
from devkit.sandboxes.airtable import AirtableSandbox
from devkit.sandboxes.hubspot import HubSpotSandbox
from devkit.sandboxes.hubspot.testing import hubspot_config
from devkit.sandboxes.salesforce import SalesforceSandbox
from service.commands import trace_cli
from service.commands.trace import Found, Scan, trace
from service.commands.trace_cli import PROGRESS_MIN, parse_args, since_ms, wants_bar
from service.commands.trace_format import (
    clean,
    duration,
    json_line,
    notes,
    oldest_first,
    report,
    rfc3339,
    row,
    summary,
    table,
)
from service.settings import Settings

NOW = 1_795_000_000_000  # 2026-11-18T11:06:40Z, a fixed "now" for the pure tests
HOUR = 3_600_000
MINUTE = 60_000


def status(
    destination: str, state: str, at_ms: int, evaluation: str = "eval_1", **extra: Any
) -> dict[str, Any]:
    """A DeliveryStatus dict of org_1/lead_A completed at `at_ms`."""
    return {
        "schema_version": 1,
        "event_id": f"ev_{evaluation}",
        "org_id": "org_1",
        "lead_id": "lead_A",
        "evaluation_id": evaluation,
        "destination": destination,
        "status": state,
        "reason": None,
        "records": [],
        "error": None,
        "attempts": 1,
        "evaluated_at": rfc3339(at_ms - 2000),
        "completed_at": rfc3339(at_ms),
        "latency_ms": 210,
        **extra,
    }


def error(code: str, message: str, http: int | None) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "retryable": code == "rate_limited",
        "http_status": http,
    }


SF_RECORDS = [
    {"object": "Lead", "id": "00Q5g00000AbCdE", "action": "updated"},
    {"object": "Account", "id": "0015g00000XyZaB", "action": "updated"},
]
BAD_OPTION = "Property values were not valid: 'hot' is not one of the allowed options"


# --- arguments ---------------------------------------------------------------


def test_since_takes_rfc3339_and_times_back() -> None:
    assert since_ms("2h", NOW) == NOW - 2 * HOUR
    assert since_ms("3d", NOW) == NOW - 72 * HOUR
    assert since_ms("90m", NOW) == since_ms("1h30m", NOW) == NOW - 90 * MINUTE
    assert since_ms("1w", NOW) == NOW - 168 * HOUR
    assert since_ms(" 45s ", NOW) == NOW - 45_000
    ten = int(datetime(2026, 11, 18, 10, tzinfo=UTC).timestamp() * 1000)
    assert since_ms("2026-11-18T10:00:00Z", NOW) == ten
    assert since_ms("2026-11-18T11:00:00+01:00", NOW) == since_ms("2026-11-18t10:00:00z", NOW)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("yesterday", "not a time: 'yesterday'"),
        ("2h ago", "not a time"),
        ("-2h", "not a time"),
        ("0h", "'0h' is no time back"),
        ("2026-11-18T10:00:00", "needs a UTC offset or Z"),
        ("2030-01-01T00:00:00Z", "is in the future"),
    ],
)
def test_since_refuses(text: str, problem: str) -> None:
    with pytest.raises(Exception, match=re.escape(problem)):
        since_ms(text, NOW)


def test_defaults() -> None:
    args = parse_args(["--org", "org_1", "--lead", "lead:with:colons"], NOW)
    assert (args.org, args.lead, args.since) == ("org_1", "lead:with:colons", NOW - 24 * HOUR)
    assert (args.json, args.timeout) == (False, 15.0)
    args = parse_args(["--org=o", "--lead=l", "--since=2h", "--json", "--timeout=2.5"], NOW)
    assert (args.since, args.json, args.timeout) == (NOW - 2 * HOUR, True, 2.5)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--org", "org_1"], "the following arguments are required: --lead"),
        (["--org", "org:1", "--lead", "l"], "argument --org: not an org id: 'org:1'"),
        (["--org", "o", "--lead", " l"], "argument --lead: not a lead id"),
        (["--org", "o", "--lead", "l", "--since", "10:00"], "argument --since: not a time"),
        (["--org", "o", "--lead", "l", "--timeout", "0"], "argument --timeout: not a number"),
        (["--org", "o", "--lead", "l", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_a_bad_argument_exits_2_with_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv, NOW)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("trace: ") and err.endswith("(see --help)\n")
    assert expected in err


def test_a_bar_for_long_scans_on_a_terminal_only() -> None:
    assert wants_bar(PROGRESS_MIN, True)
    assert not wants_bar(PROGRESS_MIN - 1, True)
    assert not wants_bar(10 * PROGRESS_MIN, False)


# --- output ------------------------------------------------------------------


def found(s: dict[str, Any], offset: int, partition: int = 0) -> Found:
    return Found(partition, offset, NOW, s)


def test_rows_say_what_was_written_skipped_or_failed() -> None:
    delivered = row(found(status("salesforce", "delivered", NOW, records=SF_RECORDS), 1))
    assert delivered == (
        rfc3339(NOW),
        "salesforce",
        "delivered",
        "1",
        "210 ms",
        "eval_1",
        rfc3339(NOW - 2000),
        "records Lead 00Q5g00000AbCdE updated, Account 0015g00000XyZaB updated",
    )
    skipped = status("airtable", "skipped", NOW, reason="record_not_found")
    assert row(found(skipped, 2))[-1] == "reason record_not_found"
    account_only = status("hubspot", "skipped", NOW, reason="record_not_found", records=[
        {"object": "companies", "id": "77", "action": "updated"}
    ])  # fmt: skip
    assert (
        row(found(account_only, 3))[-1] == "reason record_not_found; records companies 77 updated"
    )
    failed = status(
        "hubspot", "failed", NOW, attempts=2, error=error("invalid_value", BAD_OPTION, 400)
    )
    assert row(found(failed, 4))[2:4] == ("failed", "2")
    assert row(found(failed, 4))[-1] == f"error invalid_value (HTTP 400): {BAD_OPTION}"
    timeout = status("salesforce", "retrying", NOW, error=error("timeout", "read timed out", None))
    assert row(found(timeout, 5))[-1] == "error timeout: read timed out"


def test_odd_values_stay_on_one_printable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # Secrets other tests registered in this process would mask parts of the text.
    monkeypatch.setattr("service.redact._counts", Counter())
    sneaky = "line one\nline two\x1b[2J\rBearer abcdefghijklmnop"
    s = status("hubspot", "failed", NOW, error=error("server_error", sneaky, 500))
    detail = row(found(s, 1))[-1]
    assert detail == ("error server_error (HTTP 500): line one\\nline two\\x1b[2J\\rBearer ***")
    assert clean("x" * 500, 300) == "x" * 299 + "…"
    assert clean(None) == clean("") == "-"
    partial = row(Found(0, 7, NOW, {"status": "delivered"}))  # a status missing most fields
    assert partial == (rfc3339(NOW), "-", "delivered", "-", "-", "-", "-", "-")
    assert orjson.loads(json_line(found(s, 1)))["error"]["message"].endswith("Bearer ***")


def test_latency_reads_as_a_duration() -> None:
    assert [duration(ms) for ms in (0, 210, 4_240, 185_000, 7_830_000, 943_791_127)] == [
        "0 ms", "210 ms", "4.2 s", "3m 05s", "2h 10m", "10d 22h"
    ]  # fmt: skip
    assert row(found(status("hubspot", "delivered", NOW, latency_ms=None), 1))[4] == "-"


def test_oldest_first_across_partitions() -> None:
    later = Found(0, 1, NOW, status("salesforce", "delivered", NOW))
    earlier = Found(2, 9, NOW + 5, status("hubspot", "delivered", NOW - MINUTE))
    no_time = Found(1, 3, NOW - HOUR, {"destination": "airtable", "status": "delivered"})
    same_time = Found(0, 2, NOW, status("airtable", "delivered", NOW))
    assert oldest_first([later, same_time, earlier, no_time]) == [
        no_time,
        earlier,
        later,
        same_time,
    ]


def test_table_is_aligned_and_summary_is_per_destination() -> None:
    statuses = [
        found(status("salesforce", "delivered", NOW, records=SF_RECORDS), 0),
        found(
            status("hubspot", "retrying", NOW + 1000, error=error("rate_limited", "slow", 429)), 1
        ),
        found(status("hubspot", "failed", NOW + 2000, error=error("invalid_value", "no", 400)), 2),
        found(status("airtable", "skipped", NOW + 3000, reason="record_not_found"), 3),
    ]
    lines = table([row(f) for f in statuses])
    assert lines[0].split() == [
        "time", "destination", "status", "attempts", "latency", "evaluation", "evaluated_at",
        "detail",
    ]  # fmt: skip
    for column in ("destination", "status", "latency", "detail"):
        at = lines[0].index(column)
        assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines), column
    assert summary(list(reversed(statuses))) == [
        f"  airtable    last skipped (record_not_found) at {rfc3339(NOW + 3000)}, evaluation"
        " eval_1; 1 status: 1 skipped",
        f"  hubspot     last failed (invalid_value) at {rfc3339(NOW + 2000)}, evaluation"
        " eval_1; 2 statuses: 1 failed, 1 retrying",
        f"  salesforce  last delivered at {rfc3339(NOW)}, evaluation eval_1; 1 status: 1 delivered",
    ]


def test_report_with_and_without_statuses() -> None:
    scan = Scan(partitions=3, scanned=120, unreadable=1, incomplete=["partition 2 (end offset 9)"])
    lines = report(scan, "org_1", "lead_A", NOW - HOUR, NOW, "status.topic")
    assert lines == [
        f"trace of lead lead_A in org org_1: statuses from {rfc3339(NOW - HOUR)} to "
        f"{rfc3339(NOW)} in topic status.topic",
        "no statuses for this lead in this window (120 records read in 3 partitions): "
        "try an earlier --since, or check the org and lead ids",
        "warning: not JSON, not shown: 1 record of this lead",
        "warning: incomplete, stopped before the end of partition 2 (end offset 9)",
    ]
    scan = Scan(partitions=1, scanned=5, found=[found(status("hubspot", "delivered", NOW), 4)])
    lines = report(scan, "org_1", "lead_A", NOW - HOUR, NOW, "t")
    assert len(lines) == 6 and lines[3] == "by destination:"
    assert lines[-1] == notes(scan)[0] == "1 status (5 records read in 1 partition)"


# --- against the broker ------------------------------------------------------


async def status_topic(bootstrap: str, partitions: int = 3) -> str:
    topic = f"trace{uuid.uuid4().hex[:10]}.status"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


async def produce(bootstrap: str, topic: str, records: list[tuple[str, bytes, int, int]]) -> None:
    """(key, value, timestamp ms, partition), sent together: several per batch."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=50)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value, key.encode(), partition=p, timestamp_ms=at)
            for key, value, at, p in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def completed_ms(s: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(s["completed_at"]).timestamp() * 1000)


def history(now: int) -> tuple[list[tuple[str, bytes, int, int]], list[dict[str, Any]]]:
    """Statuses of org_1/lead_A across the three destinations (the expected ones,
    oldest first, within 4 hours), interleaved with other leads' and older ones,
    produced out of order over three partitions."""
    h = now - 3 * HOUR
    mine = [
        status("salesforce", "delivered", h, records=SF_RECORDS),
        status("hubspot", "retrying", h + MINUTE, error=error("rate_limited", "Too many", 429)),
        status("airtable", "skipped", h + 2 * MINUTE, reason="record_not_found"),
        status("hubspot", "failed", h + 3 * MINUTE, attempts=2,
               error=error("invalid_value", BAD_OPTION, 400)),
        status("salesforce", "skipped", h + HOUR, "eval_0", reason="stale_evaluation"),
        status("airtable", "delivered", h + 2 * HOUR, "eval_2",
               records=[{"object": "Contacts", "id": "recAbC", "action": "created"}]),
    ]  # fmt: skip
    others = [
        ("org_1:lead_B", status("salesforce", "delivered", h, "eval_lead_b"), 0),
        ("org_2:lead_A", status("hubspot", "delivered", h + MINUTE, "eval_org_2"), 1),
        ("org_1:lead_A2", status("airtable", "failed", h + 5, "eval_lead_a2"), 2),
        ("org_1:lead_A", status("salesforce", "delivered", now - 6 * HOUR, "eval_6h"), 1),
        ("org_1:lead_A", status("salesforce", "delivered", now - 30 * HOUR, "eval_30h"), 2),
    ]
    records = [(key, orjson.dumps(s), completed_ms(s), p) for key, s, p in others]
    order = [3, 0, 5, 1, 4, 2]  # not the time order, and spread over the partitions
    for n, i in enumerate(order):
        records.insert(n * 2, ("org_1:lead_A", orjson.dumps(mine[i]), completed_ms(mine[i]), i % 3))
    records.append(("org_1:lead_A", b"{not json", h + 4 * MINUTE, 0))
    records += [(f"org_9:lead_{n}", b"{}", now - n * MINUTE, n % 3) for n in range(30)]
    return records, mine


def run_trace(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", "trace", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_trace_command_shows_the_leads_statuses_oldest_first(kafka_bootstrap: str) -> None:
    topic = await status_topic(kafka_bootstrap)
    now = int(time.time() * 1000)
    records, mine = history(now)
    await produce(kafka_bootstrap, topic, records)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_STATUS": topic}

    done = run_trace("--org", "org_1", "--lead", "lead_A", "--since", "4h", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no bar without a terminal, no log lines
    lines = done.stdout.splitlines()
    assert re.fullmatch(
        rf"trace of lead lead_A in org org_1: statuses from \S+Z to \S+Z in topic {topic}", lines[0]
    )
    assert lines[1].split()[:3] == ["time", "destination", "status"]
    rows = lines[2:8]
    assert [r.split()[:3] for r in rows] == [
        [s["completed_at"], s["destination"], s["status"]] for s in mine
    ]
    assert rows[0].endswith("records Lead 00Q5g00000AbCdE updated, Account 0015g00000XyZaB updated")
    assert rows[1].endswith("error rate_limited (HTTP 429): Too many")
    assert rows[2].endswith("reason record_not_found")
    assert rows[3].endswith(f"error invalid_value (HTTP 400): {BAD_OPTION}")
    assert rows[3].split()[3:7] == ["2", "210", "ms", "eval_1"]
    assert rows[4].endswith("reason stale_evaluation")
    assert rows[5].endswith("records Contacts recAbC created")
    assert lines[8:12] == [
        "by destination:",
        f"  airtable    last delivered at {mine[5]['completed_at']}, evaluation eval_2;"
        " 2 statuses: 1 delivered, 1 skipped",
        f"  hubspot     last failed (invalid_value) at {mine[3]['completed_at']}, evaluation"
        " eval_1; 2 statuses: 1 failed, 1 retrying",
        f"  salesforce  last skipped (stale_evaluation) at {mine[4]['completed_at']}, evaluation"
        " eval_0; 2 statuses: 1 delivered, 1 skipped",
    ]
    assert re.fullmatch(r"6 statuses \(\d+ records read in 3 partitions\)", lines[12])
    assert lines[13:] == ["warning: not JSON, not shown: 1 record of this lead"]
    for other in ("eval_lead_b", "eval_org_2", "eval_lead_a2", "eval_6h", "eval_30h"):
        assert other not in done.stdout

    default = run_trace("--org", "org_1", "--lead", "lead_A", "--json", env=env)
    assert default.returncode == 0, default.stderr
    shown = [orjson.loads(line) for line in default.stdout.splitlines()]
    assert [s["evaluation_id"] for s in shown] == ["eval_6h"] + [s["evaluation_id"] for s in mine]
    assert shown[1:] == mine  # the statuses as published
    err = default.stderr.splitlines()
    assert err[0].startswith("trace of lead lead_A in org org_1: statuses from ")
    assert re.fullmatch(r"7 statuses \(\d+ records read in 3 partitions\)", err[1])


async def test_trace_command_no_statuses_and_errors(kafka_bootstrap: str) -> None:
    topic = await status_topic(kafka_bootstrap)
    now = int(time.time() * 1000)
    await produce(kafka_bootstrap, topic, history(now)[0])
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_STATUS": topic}

    none = run_trace("--org", "org_1", "--lead", "lead_Z", env=env)
    assert none.returncode == 0, none.stderr
    header, nothing = none.stdout.splitlines()
    assert header.startswith("trace of lead lead_Z in org org_1")
    assert nothing.startswith("no statuses for this lead in this window (")

    missing = run_trace("--org", "o", "--lead", "l", env={**env, "TOPIC_STATUS": "no.such.topic"})
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == "trace: the status topic 'no.such.topic' does not exist\n"

    start = time.monotonic()
    port = free_port()
    gone = run_trace(
        "--org", "o", "--lead", "l", "--timeout", "1.5",
        env={**env, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"},
    )  # fmt: skip
    assert gone.returncode == 2 and gone.stdout == ""
    assert gone.stderr == (
        f"trace: Kafka at 127.0.0.1:{port} did not answer within 1.5s (KafkaConnectionError)\n"
    )
    assert 1.5 <= time.monotonic() - start < 30

    unset = run_trace("--org", "o", "--lead", "l", env={**env, "KAFKA_BOOTSTRAP_SERVERS": ""})
    assert unset.returncode == 2 and "KAFKA_BOOTSTRAP_SERVERS" in unset.stderr
    helped = run_trace("--help", env={"KAFKA_BOOTSTRAP_SERVERS": "", "TOPIC_STATUS": ""})
    assert helped.returncode == 0 and "--since" in helped.stdout


async def test_scan_reads_to_the_end_and_reports_progress(kafka_bootstrap: str) -> None:
    topic = await status_topic(kafka_bootstrap)
    now = int(time.time() * 1000)
    records, mine = history(now)
    await produce(kafka_bootstrap, topic, records)
    settings = Settings.kafka_from_env(
        {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_STATUS": topic}
    )
    totals: list[int] = []
    reads: list[int] = []
    scan = await trace(settings, "org_1", "lead_A", now - 4 * HOUR,
                       on_total=totals.append, on_read=reads.append)  # fmt: skip
    assert [f.status for f in oldest_first(scan.found)] == mine
    assert (scan.unreadable, scan.incomplete, scan.partitions) == (1, [], 3)
    assert sum(reads) == scan.scanned == totals[-1] == scan.total
    assert scan.scanned >= len(mine) + 1  # a broker without time lookups reads more


def run_on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str, bytes]:
    """Exit code, stdout, and what a 100-column terminal on stderr showed."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "service", "trace", *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
            check=False,
        )
        shown = b""
        # The terminal hands output over asynchronously: read until it stays quiet.
        while select.select([leader], [], [], 0.5)[0]:
            shown += os.read(leader, 65536)
    finally:
        os.close(leader)
        os.close(follower)
    return proc.returncode, proc.stdout, shown


async def test_progress_bar_for_a_long_scan_on_a_terminal(kafka_bootstrap: str) -> None:
    topic = await status_topic(kafka_bootstrap)
    now = int(time.time() * 1000)
    await produce(kafka_bootstrap, topic, history(now)[0])
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_STATUS": topic}
    args = ("--org", "org_1", "--lead", "lead_A", "--since", "5h")

    code, out, shown = await asyncio.to_thread(run_on_a_terminal, *args, env=env)
    assert code == 0 and shown == b""  # a short scan: no bar
    assert "6 statuses" in out

    filler = [(f"org_9:lead_{n}", b"{}", now - MINUTE, n % 3) for n in range(PROGRESS_MIN)]
    await produce(kafka_bootstrap, topic, filler)
    code, out, shown = await asyncio.to_thread(run_on_a_terminal, *args, env=env)
    assert code == 0
    assert b"trace: 100%" in shown and b"rec/s" in shown
    total = re.search(r"(\d+) records read", out)
    assert total is not None and f"{total[1]}/{total[1]}".encode() in shown
    assert "6 statuses" in out and "%" not in out


async def test_a_lead_delivered_by_the_service_is_traced(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The real service writes one lead to the three sandboxes (updated in
    Salesforce, created in HubSpot, not found in Airtable); `trace` shows it."""
    tls = tmp_path / "tls"
    tls.mkdir()
    lead = make_event(lead_id="lead_traced", email="ada@example.com")
    other = make_event(lead_id="lead_other", email="bob@example.com")
    async with (
        SalesforceSandbox(tls) as sf,
        HubSpotSandbox(tls) as hs,
        AirtableSandbox(tls, rate_limit=1000) as at,
    ):
        [sf_lead] = sf.seed("Lead", {"LastName": "L", "Company": "C", "Email": "ada@example.com"})
        lookup_only = {**DEFAULT_TARGETS["airtable"][0], "create_if_missing": False}
        env = {"DESTINATION_CA_FILE": str(sf.ca_file)}
        async with ServiceHarness(kafka_bootstrap, tmp_path, env=env) as h:
            h.write_secret("org_1-salesforce", sf.credentials())
            h.write_secret("org_1-hubspot", hs.credentials())
            h.write_secret("org_1-airtable", at.credentials())
            await h.put_config(make_config("salesforce"))
            await h.put_config(hubspot_config(propensity=False))
            await h.put_config(make_config("airtable", targets=[lookup_only]))
            await h.send_event(lead)
            await h.send_event(other)
            await h.wait_statuses(6)
            topics = {k: v for k, v in h.env.items() if k.startswith(("KAFKA_", "TOPIC_"))}
            done = await asyncio.to_thread(
                run_trace, "--org", "org_1", "--lead", "lead_traced", "--since", "1h", env=topics
            )
    [contact] = [
        i
        for i, c in hs.store.records["contacts"].items()
        if c.properties["email"] == "ada@example.com"
    ]
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    evaluation = lead["evaluation"]["evaluation_id"]
    print(done.stdout)  # shown when the test fails
    rows = lines[2:5]
    assert sorted([*r.split()[1:3], r.split()[6]] for r in rows) == [
        ["airtable", "skipped", evaluation],
        ["hubspot", "delivered", evaluation],
        ["salesforce", "delivered", evaluation],
    ]
    assert [r.split()[0] for r in rows] == sorted(r.split()[0] for r in rows)  # oldest first
    detail = {r.split()[1]: r for r in rows}
    assert detail["salesforce"].endswith(f"records Lead {sf_lead} updated")
    assert detail["hubspot"].endswith(f"records contacts {contact} created")
    assert detail["airtable"].endswith("reason record_not_found")
    assert lines[5] == "by destination:" and len(lines) == 10
    assert lines[9].startswith("3 statuses (")
    assert other["evaluation"]["evaluation_id"] not in done.stdout


def test_an_incomplete_scan_prints_what_it_read_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Kafka stopped answering mid-scan (the broker side is covered above)."""
    partial = Scan(
        partitions=2,
        scanned=10,
        found=[found(status("hubspot", "delivered", NOW), 3)],
        incomplete=["partition 1 (end offset 40)"],
    )

    async def stalled(*args: object, **kwargs: object) -> Scan:
        return partial

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setattr(trace_cli, "trace", stalled)
    monkeypatch.setattr(trace_cli, "configure_logs", lambda: None)  # global, for the CLI only
    assert trace_cli.main(["--org", "org_1", "--lead", "lead_A"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[2].split()[1:3] == ["hubspot", "delivered"]
    assert out.splitlines()[-1] == (
        "warning: incomplete, stopped before the end of partition 1 (end offset 40)"
    )
    assert err == "trace: Kafka stopped answering: the trace is incomplete\n"
