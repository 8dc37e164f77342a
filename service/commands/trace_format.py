"""What `trace` prints: pure functions from the statuses found to text lines.

One aligned line per status, oldest first, then one summary line per
destination. Every value comes from a CRM or a topic, so it is made one line
of printable text (no terminal escapes) and secrets are masked all the same.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from service.commands.trace import Found, Scan
from service.redact import redact

COLUMNS = ("time", "destination", "status", "attempts", "latency", "evaluation", "evaluated_at")
MESSAGE_MAX = 300  # characters of a CRM message on a line; --json has all of it
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def rfc3339(ms: int) -> str:
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clean(value: Any, limit: int = 120) -> str:
    """One printable line: control characters shown escaped, long text cut."""
    if value is None or value == "":
        return "-"
    text = redact(str(value))
    text = _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "es" if word.endswith("s") else "s")


def duration(ms: int) -> str:
    """210 ms, 4.2 s, 3m 05s, 2h 10m, 10d 22h: readable, and precise where it counts."""
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds:02d}s"


def when_ms(found: Found) -> int:
    """`completed_at` as epoch ms, or the record's timestamp when it is unreadable."""
    text = found.status.get("completed_at")
    try:
        return int(datetime.fromisoformat(str(text)).timestamp() * 1000)
    except (TypeError, ValueError, OverflowError):
        return found.timestamp_ms


def oldest_first(found: Iterable[Found]) -> list[Found]:
    return sorted(found, key=lambda f: (when_ms(f), f.timestamp_ms, f.partition, f.offset))


def detail(status: dict[str, Any]) -> str:
    """What was written, or why not."""
    parts = []
    if status.get("reason"):
        parts.append(f"reason {clean(status['reason'])}")
    error = status.get("error")
    if isinstance(error, dict):
        http = error.get("http_status")
        code = clean(error.get("code")) + (f" (HTTP {clean(http)})" if http is not None else "")
        parts.append(f"error {code}: {clean(error.get('message'), MESSAGE_MAX)}")
    records = status.get("records")
    if isinstance(records, list) and records:
        written = ", ".join(
            f"{clean(r.get('object'))} {clean(r.get('id'))} {clean(r.get('action'))}"
            for r in records
            if isinstance(r, dict)
        )
        parts.append(f"records {written}")
    return "; ".join(parts) or "-"


def row(found: Found) -> tuple[str, ...]:
    s = found.status
    latency = s.get("latency_ms")
    return (
        clean(s.get("completed_at") or rfc3339(found.timestamp_ms)),
        clean(s.get("destination")),
        clean(s.get("status")),
        clean(s.get("attempts")),
        duration(latency) if isinstance(latency, int) and latency >= 0 else clean(latency),
        clean(s.get("evaluation_id")),
        clean(s.get("evaluated_at")),
        detail(s),
    )


def table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Aligned columns; the detail column last and unpadded."""
    head = (*COLUMNS, "detail")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(r, widths, strict=False)), r[-1]])
        for r in (head, *rows)
    ]


def summary(found: Sequence[Found]) -> list[str]:
    """Per destination: its last status (and why), and the count of each status."""
    by_destination: dict[str, list[dict[str, Any]]] = {}
    for f in oldest_first(found):
        by_destination.setdefault(clean(f.status.get("destination")), []).append(f.status)
    width = max((len(d) for d in by_destination), default=0)
    lines = []
    for name, statuses in sorted(by_destination.items()):
        last = statuses[-1]
        why = last.get("reason") or (last.get("error") or {}).get("code")
        counts = Counter(clean(s.get("status")) for s in statuses)
        tally = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        lines.append(
            f"  {name.ljust(width)}  last {clean(last.get('status'))}"
            + (f" ({clean(why)})" if why else "")
            + f" at {clean(last.get('completed_at'))}, evaluation"
            + f" {clean(last.get('evaluation_id'))}; {count(len(statuses), 'status')}: {tally}"
        )
    return lines


def header(org: str, lead: str, since_ms: int, until_ms: int, topic: str) -> str:
    return (
        f"trace of lead {clean(lead)} in org {clean(org)}: statuses from {rfc3339(since_ms)}"
        f" to {rfc3339(until_ms)} in topic {clean(topic)}"
    )


def notes(scan: Scan) -> list[str]:
    """How much was read and found, and what the reader must know about it."""
    read = f"{count(scan.scanned, 'record')} read in {count(scan.partitions, 'partition')}"
    lines = [
        f"{count(len(scan.found), 'status')} ({read})"
        if scan.found
        else f"no statuses for this lead in this window ({read}): "
        "try an earlier --since, or check the org and lead ids"
    ]
    if scan.unreadable:
        unreadable = count(scan.unreadable, "record")
        lines.append(f"warning: not JSON, not shown: {unreadable} of this lead")
    lines += [f"warning: incomplete, stopped before the end of {p}" for p in scan.incomplete]
    return lines


def report(scan: Scan, org: str, lead: str, since_ms: int, until_ms: int, topic: str) -> list[str]:
    """The text output: header, one line per status, the summary, the notes."""
    lines = [header(org, lead, since_ms, until_ms, topic)]
    if scan.found:
        lines += table([row(f) for f in oldest_first(scan.found)])
        lines += ["by destination:", *summary(scan.found)]
    return lines + notes(scan)


def json_line(found: Found) -> str:
    """The status as published, one object per line (secrets masked all the same)."""
    return redact(orjson.dumps(found.status).decode())
