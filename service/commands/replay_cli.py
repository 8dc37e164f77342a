"""`python -m service replay-dlq [--org ORG] [--since TIME] [--until TIME] [--dry-run]`.

Exit codes: 0 when done (the summary is on stdout), 1 when Kafka or the DLQ
topic cannot be used, 2 for a bad argument or setting (one line on stderr).
Settings: only the KAFKA_* and TOPIC_* variables of the service are read.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime
from typing import NoReturn

from aiokafka.errors import KafkaError
from tqdm import tqdm

from service.commands.replay import ReplayFilter, Summary, TopicMissing, replay
from service.errors import SettingsError
from service.settings import Settings

PROG = "replay-dlq"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line instead of argparse's usage block."""
        print(f"{PROG}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def rfc3339_ms(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 time (an offset or Z is required)."""
    try:
        value = datetime.fromisoformat(text.strip().upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an RFC 3339 time: {text!r} (for example 2026-11-22T10:15:00Z)"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset or Z")
    return int(value.timestamp() * 1000)


def org_id(text: str) -> str:
    if not text or ":" in text or text != text.strip():
        raise argparse.ArgumentTypeError(f"not an org id: {text!r}")
    return text


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m service replay-dlq",
        description="Republish DLQ records to the evaluations topic (key, value and headers, "
        "without the error.* and source.* headers), up to the DLQ's end at start.",
    )
    parser.add_argument("--org", type=org_id, help="only records keyed {ORG}:...")
    parser.add_argument("--since", type=rfc3339_ms, help="only records at or after (RFC 3339)")
    parser.add_argument("--until", type=rfc3339_ms, help="only records before (RFC 3339)")
    parser.add_argument("--dry-run", action="store_true", help="count only; send nothing")
    args = parser.parse_args(argv)
    if args.since is not None and args.until is not None and args.since >= args.until:
        parser.error("--since must be earlier than --until")
    return args


async def _run(settings: Settings, args: argparse.Namespace) -> Summary:
    selection = ReplayFilter(args.org, args.since, args.until)
    # A bar on a terminal only: logs and pipes get the summary alone.
    with tqdm(unit="rec", desc=PROG, disable=not sys.stderr.isatty(), file=sys.stderr) as bar:

        def total(n: int) -> None:
            bar.total = n
            bar.refresh()

        return await replay(
            settings, selection, dry_run=args.dry_run, on_total=total, on_read=bar.update
        )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        settings = Settings.kafka_from_env()
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = asyncio.run(_run(settings, args))
    except TopicMissing as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"{PROG}: Kafka error: {exc!r}", file=sys.stderr)
        return 1
    for line in summary.lines(settings.topic_dlq, settings.topic_evaluations):
        print(f"{PROG}: {line}")
    return 0
