"""Keeps secrets out of logs, topics, metrics and error messages.

Every secret value the service loads is registered here; `redact` masks them
(and bearer tokens in general) in any text that leaves the process.

The set is bounded: a secret is registered for an `owner` (a credentials file's
key, an account's access token), which keeps only its newest few values, so a
token refreshed every half hour does not add an entry each time. An answer in
flight may still echo the value just replaced, hence a few. Owners unused the
longest go first past MAX_OWNERS; a secret in use is registered again on use.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, OrderedDict

_BEARER = re.compile(r"(?i)(bearer\s+|token[\"'=:\s]+|api_key[\"'=:\s]+)[A-Za-z0-9._!\-]{8,}")
KEEP_PER_OWNER = 3
MAX_OWNERS = 20_000
_owners: OrderedDict[str, list[str]] = OrderedDict()  # owner -> its values, newest last
_counts: Counter[str] = Counter()  # value -> owners holding it


def register_secret(value: str, owner: str | None = None) -> None:
    """Mask `value` from now on. Without an owner the value is its own owner."""
    if len(value) < 8:  # short values would mask ordinary words; real tokens are long
        return
    key = owner if owner is not None else "\0" + value
    values = _owners.pop(key, [])
    if value in values:
        values.remove(value)
    else:
        _counts[value] += 1
    values.append(value)
    while len(values) > KEEP_PER_OWNER:
        _forget(values.pop(0))
    _owners[key] = values
    while len(_owners) > MAX_OWNERS:
        _, old = _owners.popitem(last=False)
        for stale in old:
            _forget(stale)


def _forget(value: str) -> None:
    _counts[value] -= 1
    if _counts[value] <= 0:
        del _counts[value]


def registered() -> int:
    """How many distinct secrets are masked (for tests and the memory bound)."""
    return len(_counts)


def redact(text: str) -> str:
    for secret in list(_counts):
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
