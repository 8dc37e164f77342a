"""SOQL built from untrusted text: literal escaping, API-name checks, IN-list chunks.

Pure functions. Every value goes through `quote`, which applies Salesforce's
escape sequences for quoted strings (backslash first, then quotes and control
characters), so a lead email such as `x' OR Name != '` stays one literal.
Field and object names cannot be quoted in SOQL, so they must pass `check_name`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote as url_quote

# https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-quotedstringescapes.html
_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\b": "\\b",
        "\f": "\\f",
    }
)
# Letters, digits and underscores, starting with a letter (custom names end in __c).
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
MAX_LITERAL = 4_000  # "Strings in SOQL WHERE clauses: 4,000 characters for each string"
# URI + headers must stay under 16,384 bytes; leave room for the headers (the token).
DEFAULT_URI_BUDGET = 12_000


def quote(value: str) -> str:
    """A SOQL string literal holding exactly `value`."""
    return "'" + value.translate(_ESCAPES) + "'"


def check_name(name: str) -> str:
    """An object or field API name, or ValueError: names are spliced into SOQL unquoted."""
    if not _API_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a Salesforce API name")
    return name


def _encoded_len(text: str) -> int:
    return len(url_quote(text, safe=""))


# Converted Leads are read-only (CANNOT_UPDATE_CONVERTED_LEAD): never match one by field.
OPEN_ONLY = {"Lead": "IsConverted = false"}


def in_queries(
    obj: str,
    field: str,
    values: Iterable[str],
    *,
    budget: int = DEFAULT_URI_BUDGET,
    also: Iterable[str] = (),
    where: str | None = None,
) -> list[str]:
    """`SELECT Id, field FROM obj WHERE field IN (...)`, split so each URL fits `budget`.

    Normally one query per batch; a second only when the encoded IN list would
    not fit in one request line. Values longer than SOQL allows cannot match and
    are left out. `also` selects more fields; `where` (a fixed condition, never
    user text) is ANDed to the IN list.
    """
    check_name(obj)
    check_name(field)
    names = dict.fromkeys(["Id", field, *(check_name(n) for n in also)])
    head = f"SELECT {', '.join(names)} FROM {obj} WHERE {field} IN ("
    tail = f") AND {where}" if where else ")"
    room = budget - _encoded_len(head) - _encoded_len(tail)
    queries: list[str] = []
    chunk: list[str] = []
    used = 0
    for value in dict.fromkeys(values):  # de-duplicated, order kept
        if len(value) > MAX_LITERAL:
            continue
        literal = quote(value)
        size = _encoded_len(literal) + (_encoded_len(",") if chunk else 0)
        if chunk and used + size > room:
            queries.append(head + ",".join(chunk) + tail)
            chunk, used = [], 0
            size = _encoded_len(literal)
        chunk.append(literal)
        used += size
    if chunk:
        queries.append(head + ",".join(chunk) + tail)
    return queries
