"""Keeps secrets out of logs, topics, metrics and error messages.

Every secret value the service loads is registered here; `redact` masks them
(and bearer tokens in general) in any text that leaves the process.
"""

from __future__ import annotations

import logging
import re

_BEARER = re.compile(r"(?i)(bearer\s+|token[\"'=:\s]+|api_key[\"'=:\s]+)[A-Za-z0-9._!\-]{8,}")
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    # Short values would mask ordinary words; real tokens are long.
    if len(value) >= 8:
        _secrets.add(value)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return _BEARER.sub(lambda m: m.group(1) + "***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
