"""Pure reading of HubSpot answers: per-input results and errors.

Batch answers echo each input's `objectWriteTraceId` in `results[]` and, in a
207, in `errors[].context.objectWriteTraceId` (next to `context.ids`). A 400
names bad properties either in `errors[].context.propertyName` or inside the
message ("Property values were not valid: [{...,"name":"x"}]").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.errors import DeliveryError, PermanentError, TransientError
from service.redact import redact

_NAMED = re.compile(  # inside the message's JSON, escaped or not
    r'\\?"error\\?"\s*:\s*\\?"PROPERTY_DOESNT_EXIST\\?"\s*,\s*\\?"name\\?"\s*:\s*\\?"([^"\\]+)'
)


@dataclass(frozen=True)
class Input:
    trace: str  # objectWriteTraceId: our index of the merged record
    body: dict[str, Any]  # {"id": ..., "idProperty"?: ..., "properties": {...}}


@dataclass(frozen=True)
class Done:
    id: str
    created: bool


@dataclass(frozen=True)
class Missing:
    """HubSpot has no such record (OBJECT_NOT_FOUND, or left out of the results)."""


Result = Done | Missing | DeliveryError


def message_of(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        text = str(body.get("message") or fallback)
        details = [str(e.get("message")) for e in body.get("errors") or [] if isinstance(e, dict)]
        if details and details[0] not in text:
            text = f"{text} ({'; '.join(details[:3])})"
    else:
        text = str(body or fallback)
    return redact(text)[:1000]


def error_code(body: Any) -> str:
    """snake_case of HubSpot's most specific word: errors[].code, else category."""
    if isinstance(body, dict):
        for err in body.get("errors") or []:
            if isinstance(err, dict) and err.get("code"):
                return str(err["code"]).lower()
        named = _NAMED.search(str(body.get("message", "")))
        if named:
            return "property_doesnt_exist"
        if body.get("category"):
            return str(body["category"]).lower()
    return "rejected"


def permanent(
    body: Any, status: int | None, fallback: str = "rejected by HubSpot"
) -> PermanentError:
    return PermanentError(message_of(body, fallback), code=error_code(body), http_status=status)


def missing_properties(body: Any) -> set[str]:
    """Property names a 400 says do not exist."""
    if not isinstance(body, dict):
        return set()
    names = set(_NAMED.findall(str(body.get("message", ""))))
    for err in body.get("errors") or []:
        if isinstance(err, dict) and err.get("code") == "PROPERTY_DOESNT_EXIST":
            context = err.get("context") or {}
            names.update(str(n) for n in context.get("propertyName") or [])
    return names


def _context(err: dict[str, Any], name: str) -> list[str]:
    values = (err.get("context") or {}).get(name) or []
    return [str(v) for v in values] if isinstance(values, list) else [str(values)]


def per_input(body: Any, inputs: Sequence[Input], *, created: bool) -> dict[str, Result]:
    """A 200/201/207 batch answer, as one result per input trace."""
    body = body if isinstance(body, dict) else {}
    by_trace = {i.trace: i for i in inputs}
    by_id = {str(i.body["id"]).lower(): i.trace for i in inputs if i.body.get("id")}
    out: dict[str, Result] = {}
    for err in body.get("errors") or []:
        if not isinstance(err, dict):
            continue
        traces = [t for t in _context(err, "objectWriteTraceId") if t in by_trace]
        traces += [by_id[i.lower()] for i in _context(err, "ids") if i.lower() in by_id]
        if err.get("category") == "OBJECT_NOT_FOUND":
            result: Result = Missing()
        else:
            result = permanent(err, 400)  # the input was refused; the 207 is the envelope
        for trace in traces:
            out.setdefault(trace, result)
    for rec in body.get("results") or []:
        if not isinstance(rec, dict) or "id" not in rec:
            continue
        trace = str(rec.get("objectWriteTraceId") or "")
        if trace not in by_trace:  # older answers: match on the id we sent
            props = rec.get("properties") or {}
            keys = (str(rec["id"]), str(props.get("email", "")), str(props.get("hs_object_id", "")))
            trace = next((by_id[k.lower()] for k in keys if k and k.lower() in by_id), "")
        if trace in by_trace:
            out[trace] = Done(str(rec["id"]), bool(rec.get("new", created)))
    # An input the answer neither wrote nor refused: unreadable, never "not found"
    # (that would skip it as record_not_found, or match and create it again).
    unanswered = TransientError(
        "HubSpot's batch answer has no result for an input", code="bad_response"
    )
    for trace in by_trace:
        out.setdefault(trace, unanswered)
    return out


def fail_all(inputs: Sequence[Input], error: DeliveryError) -> dict[str, Result]:
    return {i.trace: error for i in inputs}
