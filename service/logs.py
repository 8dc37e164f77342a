"""Logging: JSON lines for machines, plain text on a terminal.

Every record is one line, whatever it carries (lead names, CRM answers and
tracebacks are hostile text), and secrets are masked in all of it, the
formatted exception included: a traceback can echo request headers.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

from service.redact import RedactingFilter, redact

# What could end a line or reorder a terminal line for a reader: C0/C1 controls
# (orjson escapes C0 itself), Unicode line/paragraph separators, bidi overrides
# and isolates, and lone surrogates (not UTF-8 at all).
_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in "\n\r\t":
        return repr(char)[1:-1]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """`text` with every unsafe character written as an escape, on one line."""
    return _UNSAFE_TEXT.sub(_escape, text)


def _json_safe(text: str) -> str:
    # orjson refuses lone surrogates; keep them visible as escapes instead.
    return _SURROGATE.sub(_escape, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _json_safe(redact(record.getMessage())),
        }
        if record.exc_info:
            entry["exc"] = _json_safe(redact(self.formatException(record.exc_info)))
        line = orjson.dumps(entry).decode()
        return _UNSAFE_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


class TextFormatter(logging.Formatter):
    """`time level logger: message`, the traceback after it on the same line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return one_line(redact(super().format(record)))


class Damper(logging.Filter):
    """One record per logger and message template per minute: a broker that is
    away makes aiokafka log the same connection error many times a second (1,400
    ERROR lines in 10 s were measured); the service logs the outage itself."""

    def __init__(self, every_s: float = 60.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key = (record.name, str(record.msg))
        last = self._last.get(key)
        if last is not None and record.created - last < self.every_s:
            return False
        if len(self._last) > 1000:  # templates are few; never grow without bound
            self._last.clear()
        self._last[key] = record.created
        return True


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.addFilter(Damper())  # on the handler: aiokafka.* child loggers pass through it
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
