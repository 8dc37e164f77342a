"""`python -m service trace --org ORG --lead LEAD [--since TIME] [--json]`.

Exit codes: 0 when the trace ran (with or without statuses: the output says
which), 2 for a bad argument or setting, a missing status topic, or Kafka
unreachable past `--timeout` (one line on stderr). Settings: only the KAFKA_*
and TOPIC_* variables of the service are read.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import NoReturn

from aiokafka.errors import KafkaError
from tqdm import tqdm

from service.commands.trace import KafkaUnreachable, Scan, TopicMissing, trace
from service.commands.trace_format import header, json_line, notes, oldest_first, report
from service.errors import SettingsError
from service.settings import Settings

PROG = "trace"
DEFAULT_SINCE = "24h"
PROGRESS_MIN = 10_000  # records to scan before a bar is worth showing
_RELATIVE = re.compile(r"(?:(\d+)([smhdw]))+")
_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line instead of argparse's usage block."""
        print(f"{PROG}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def since_ms(text: str, now_ms: int) -> int:
    """Epoch ms of `--since`: RFC 3339 with an offset or Z, or a time back from
    now such as `90m`, `2h`, `3d` or `1d12h`."""
    text = text.strip()
    if _RELATIVE.fullmatch(text):
        back_s = sum(int(n) * _UNIT_S[unit] for n, unit in _PART.findall(text))
        if back_s <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} is no time back")
        return now_ms - back_s * 1000
    try:
        value = datetime.fromisoformat(text.upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (RFC 3339 such as 2026-11-22T10:15:00Z, or 2h, 3d)"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset or Z")
    at = int(value.timestamp() * 1000)
    if at > now_ms:
        raise argparse.ArgumentTypeError(f"{text!r} is in the future")
    return at


def an_id(what: str, colon_ok: bool) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text or text != text.strip() or (":" in text and not colon_ok):
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}")
        return text

    return check


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds above 0: {text!r}")
    return value


def parse_args(argv: list[str], now_ms: int) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m service trace",
        description="Print one lead's delivery statuses across destinations, oldest first, "
        "from the status topic (TOPIC_STATUS), up to its end at start.",
    )
    parser.add_argument("--org", required=True, type=an_id("an org id", False), help="org id")
    parser.add_argument("--lead", required=True, type=an_id("a lead id", True), help="lead id")
    parser.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        type=lambda text: since_ms(text, now_ms),
        help="RFC 3339 time (2026-11-22T10:15:00Z) or time back (30m, 2h, 3d); default 24h",
    )
    parser.add_argument("--json", action="store_true", help="one status JSON object per line")
    parser.add_argument(
        "--timeout", type=positive, default=15.0, help="seconds to reach Kafka (default 15)"
    )
    return parser.parse_args(argv)


def wants_bar(total: int, is_terminal: bool) -> bool:
    return is_terminal and total >= PROGRESS_MIN


async def _run(settings: Settings, args: argparse.Namespace) -> Scan:
    bar: tqdm[NoReturn] | None = None
    is_terminal = sys.stderr.isatty()
    done = 0

    def total(n: int) -> None:
        nonlocal bar
        if bar is None and wants_bar(n, is_terminal):
            # The total grows while reading when a broker under-reports end offsets.
            bar = tqdm(total=n, initial=done, unit="rec", desc=PROG, file=sys.stderr)
        elif bar is not None:
            bar.total = n
            bar.refresh()

    def read(n: int) -> None:
        nonlocal done
        done += n
        if bar is not None:
            bar.update(n)

    try:
        return await trace(
            settings, args.org, args.lead, args.since,
            connect_timeout_s=args.timeout, on_total=total, on_read=read,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()


def configure_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # our own line says it once


def main(argv: list[str]) -> int:
    now_ms = int(time.time() * 1000)
    args = parse_args(argv, now_ms)
    try:
        settings = Settings.kafka_from_env()
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    configure_logs()
    try:
        scan = asyncio.run(_run(settings, args))
    except (KafkaUnreachable, TopicMissing) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"{PROG}: Kafka error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    window = (args.org, args.lead, args.since, now_ms, settings.topic_status)
    if args.json:  # statuses on stdout, what a reader needs to know on stderr
        for found in oldest_first(scan.found):
            print(json_line(found))
        print(header(*window), *notes(scan), sep="\n", file=sys.stderr)
    else:
        print("\n".join(report(scan, *window)))
    if scan.incomplete:
        print(f"{PROG}: Kafka stopped answering: the trace is incomplete", file=sys.stderr)
        return 2
    return 0
