"""HubSpot answers -> the service's errors, and per-input results (pure).

Batch answers echo each input's `objectWriteTraceId` in `results[]` and, in a
207, in `errors[].context.objectWriteTraceId` (next to `context.ids`). A 400
names bad properties either in `errors[].context.propertyName` or inside the
message ("Property values were not valid: [{...,"name":"x"}]").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from service.destinations.answers import text_of, unreadable
from service.destinations.hubspot.outcomes import Done, Input, Missing, Result
from service.destinations.hubspot.refusals import refusals, refused_input
from service.errors import DeliveryError, PermanentError
from service.redact import redact

NAME = "hubspot"

_NAMED = re.compile(  # inside the message's JSON, escaped or not
    r'\\?"error\\?"\s*:\s*\\?"PROPERTY_DOESNT_EXIST\\?"\s*,\s*\\?"name\\?"\s*:\s*\\?"([^"\\]+)'
)


def _list(value: Any) -> list[Any]:
    """A list an answer should hold; anything else reads as empty."""
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def message_of(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        text = text_of(body.get("message")) or fallback
        details = [text_of(e.get("message")) for e in _list(body.get("errors")) if _dict(e)]
        details = [d for d in details if d]
        if details and details[0] not in text:
            text = f"{text} ({'; '.join(details[:3])})"
    else:
        text = text_of(body) or fallback
    return redact(text)[:1000]


def error_code(body: Any) -> str:
    """snake_case of HubSpot's most specific word: errors[].code, else category."""
    if isinstance(body, dict):
        for err in _list(body.get("errors")):
            if isinstance(err, dict) and text_of(err.get("code")):
                return text_of(err["code"]).lower()[:100]
        named = _NAMED.search(text_of(body.get("message")))
        if named:
            return "property_doesnt_exist"
        if text_of(body.get("category")):
            return text_of(body["category"]).lower()[:100]
    return "rejected"


def permanent(
    body: Any, status: int | None, fallback: str = "rejected by HubSpot"
) -> PermanentError:
    return PermanentError(message_of(body, fallback), code=error_code(body), http_status=status)


def missing_properties(body: Any) -> set[str]:
    """Property names a 400 says do not exist."""
    if not isinstance(body, dict):
        return set()
    names = set(_NAMED.findall(text_of(body.get("message"))))
    for err in _list(body.get("errors")):
        if isinstance(err, dict) and err.get("code") == "PROPERTY_DOESNT_EXIST":
            names.update(_context(err, "propertyName"))
    return names


def _context(err: dict[str, Any], name: str) -> list[str]:
    values = _dict(err.get("context")).get(name)
    values = values if isinstance(values, list) else [values]
    return [text for v in values if (text := text_of(v))]


def _result_id(rec: dict[str, Any]) -> str | None:
    """HubSpot's v3 ids are strings; anything else is not an id we can write back."""
    rid = rec.get("id")
    return rid if isinstance(rid, str) and rid else None


def per_input(body: Any, inputs: Sequence[Input], *, created: bool) -> dict[str, Result]:
    """A 200/201/207 batch answer, as one result per input trace. Whatever cannot be
    read (a result without its id, an input left out) is `bad_response` for its input,
    never "not found" (that would skip it as record_not_found, or create it again)."""
    body = body if isinstance(body, dict) else {}
    by_trace = {i.trace: i for i in inputs}
    by_id = {str(i.body["id"]).lower(): i.trace for i in inputs if i.body.get("id")}
    out: dict[str, Result] = {}
    for err in _list(body.get("errors")):
        if not isinstance(err, dict):
            continue
        traces = [t for t in _context(err, "objectWriteTraceId") if t in by_trace]
        traces += [by_id[i.lower()] for i in _context(err, "ids") if i.lower() in by_id]
        for trace in traces:
            if trace in out:
                continue
            if err.get("category") == "OBJECT_NOT_FOUND":
                out[trace] = Missing()
                continue
            # The input was refused (the 207 is the envelope): a value, or anything else.
            props = _dict(by_trace[trace].body.get("properties"))
            out[trace] = refused_input(refusals(err), props, 400) or permanent(err, 400)
    unreadable_result = unreadable(NAME, "a batch result without its record id")
    for rec in _list(body.get("results")):
        if not isinstance(rec, dict):
            continue
        trace = text_of(rec.get("objectWriteTraceId"))
        rid = _result_id(rec)
        if trace not in by_trace and rid is not None:  # older answers: match on the id sent
            props = _dict(rec.get("properties"))
            keys = (rid, text_of(props.get("email")), text_of(props.get("hs_object_id")))
            trace = next((by_id[k.lower()] for k in keys if k and k.lower() in by_id), "")
        if trace not in by_trace:
            continue
        new = rec.get("new")
        out[trace] = (
            unreadable_result
            if rid is None
            else Done(rid, new if isinstance(new, bool) else created)
        )
    unanswered = unreadable(NAME, "a batch answer with no result for an input")
    for trace in by_trace:
        out.setdefault(trace, unanswered)
    return out


def fail_all(inputs: Sequence[Input], error: DeliveryError) -> dict[str, Result]:
    return {i.trace: error for i in inputs}
