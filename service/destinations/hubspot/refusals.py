"""Values HubSpot refuses for a property (contract §4a `invalid_value`). Pure.

A refused value comes as a VALIDATION_ERROR whose message embeds the property
checks, `Property values were not valid: [{"isValid": false, "message": "hot was
not one of the allowed options: [A, B, C]", "error": "INVALID_OPTION", "name":
"ts_score"}]`, and (v3 batch answers) as `errors[]` entries with a `code` and
`context.propertyName`. Either is read; anything unreadable is no refusal here
(the caller's other rules apply). An unknown or read-only property is not a
value problem: PROPERTY_DOESNT_EXIST and READ_ONLY_VALUE are left to them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from service.destinations.answers import text_of
from service.errors import PermanentError
from service.redact import redact

NOT_VALUES = frozenset({"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"})
_EMBEDDED = "Property values were not valid: "
_OPTION = re.compile(r"^(.{0,255}?) was not one of the allowed options")


@dataclass(frozen=True)
class Refusal:
    prop: str
    code: str  # INVALID_OPTION, INVALID_DATE, ...
    message: str
    value: str | None  # the value HubSpot names, when it does

    def error(self, properties: Mapping[str, Any], status: int | None) -> PermanentError:
        """`invalid_value` for an input that sent `properties`."""
        sent = properties.get(self.prop, self.value)
        shown = repr(text_of(sent)) if text_of(sent) else "a value"
        text = f"HubSpot refused {shown} for the property {self.prop}: {self.code}: {self.message}"
        return PermanentError(redact(text)[:1000], code="invalid_value", http_status=status)

    def hits(self, properties: Mapping[str, Any]) -> bool:
        """Whether an input's properties carry this refused value (known value only)."""
        return self.value is not None and text_of(properties.get(self.prop)) == self.value


def _refusal(prop: Any, code: Any, message: Any) -> Refusal | None:
    prop, code, message = text_of(prop), text_of(code), text_of(message)
    if not prop or not code or code in NOT_VALUES:
        return None
    option = _OPTION.match(message)
    return Refusal(prop, code, message[:500], option.group(1) if option else None)


def _embedded(message: str) -> list[Any]:
    at = message.find(_EMBEDDED)
    if at < 0:
        return []
    try:
        listed = orjson.loads(message[at + len(_EMBEDDED) :])
    except orjson.JSONDecodeError:
        return []
    return listed if isinstance(listed, list) else []


def refusals(body: Any) -> list[Refusal]:
    """Every value refusal an error body (or one batch error entry) holds."""
    if not isinstance(body, dict):
        return []
    found: list[Refusal | None] = [
        _refusal(e.get("name"), e.get("error"), e.get("message"))
        for e in _embedded(text_of(body.get("message")))
        if isinstance(e, dict)
    ]
    errors = body.get("errors")
    for err in errors if isinstance(errors, list) else []:
        if not isinstance(err, dict):
            continue
        context = err.get("context")
        names = context.get("propertyName") if isinstance(context, dict) else None
        for name in names if isinstance(names, list) else [names]:
            found.append(_refusal(name, err.get("code"), err.get("message")))
    unique: dict[tuple[str, str | None], Refusal] = {}
    for r in found:
        if r is not None:
            unique.setdefault((r.prop, r.value), r)
    return list(unique.values())


def refused_input(
    found: Sequence[Refusal], properties: Mapping[str, Any], status: int | None
) -> PermanentError | None:
    """The refusal of one input, alone in its request (or named in a 207): any value
    refusal of a property it sets."""
    for r in found:
        if r.prop in properties and (r.value is None or r.hits(properties)):
            return r.error(properties, status)
    return None
