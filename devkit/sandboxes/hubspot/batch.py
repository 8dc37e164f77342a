"""POST /crm/v3/objects/{object}/batch/{read|create|update|upsert}, at most 100 inputs.

- A missing record (read, update) is a 207 with an OBJECT_NOT_FOUND error whose
  context holds the `ids` and the input's `objectWriteTraceId`.
- Invalid values: create and upsert answer a 207 naming each failed input when
  every input carries an objectWriteTraceId (HubSpot's multi-status mode);
  otherwise, and always for update (unless `multi_status_updates`), the whole
  batch is refused with one 400 VALIDATION_ERROR and nothing is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from devkit.sandboxes.hubspot.store import Issue, Rec, Store, error_body, iso, validation_error

MAX_INPUTS = 100
UNIQUE = {"contacts": {"email", "hs_object_id"}, "companies": {"hs_object_id"}}
Answer = tuple[int, dict[str, Any]]


def _envelope(results: list[dict[str, Any]], errors: list[dict[str, Any]], ok: int) -> Answer:
    now = iso(datetime.now(UTC))
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": now,
        "completedAt": now,
        "requestedAt": now,
    }
    if errors:
        body.update(numErrors=len(errors), errors=errors)
    return (207 if errors else ok), body


def _not_found(obj: str, key: str, trace: str | None) -> dict[str, Any]:
    context: dict[str, list[str]] = {"ids": [key]}
    if trace:
        context["objectWriteTraceId"] = [trace]
    kind = obj.rstrip("s").upper().replace("COMPANIE", "COMPANY")
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "context": context,
        "message": f"Could not get some {kind} objects, they may be deleted or not exist. "
        "Check that ids are valid.",
    }


def _input_error(issues: list[Issue], trace: str) -> dict[str, Any]:
    err = validation_error(issues, context={"objectWriteTraceId": [trace]})
    err.pop("correlationId")
    return err


def _traced(inputs: list[dict[str, Any]]) -> bool:
    return all(i.get("objectWriteTraceId") for i in inputs)


def run(store: Store, obj: str, op: str, body: Any, multi_status_updates: bool) -> Answer:
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        return 400, error_body("Invalid input JSON: inputs must be a list", "VALIDATION_ERROR")
    if len(inputs) > MAX_INPUTS:
        return 400, error_body(
            f"Batch input limit exceeded: {len(inputs)} inputs, at most {MAX_INPUTS}",
            "VALIDATION_ERROR",
        )
    if op == "read":
        return _read(store, obj, body, inputs)
    keyed = [str(i.get("id", "")).lower() for i in inputs] if op != "create" else []
    dupes = sorted({k for k in keyed if keyed.count(k) > 1})
    if dupes:
        return 400, error_body(
            f"Duplicate IDs found in batch input: {dupes}. IDs must be unique", "VALIDATION_ERROR"
        )
    checked = [store.validate(obj, _values(op, i)) for i in inputs]
    if op == "create" and obj == "contacts":
        checked = _conflicts(store, checked)
    bad = [n for n, (_, issues) in enumerate(checked) if issues]
    per_input = _traced(inputs) and (op != "update" or multi_status_updates)
    if bad and not per_input:
        issues = [issue for n in bad for issue in checked[n][1]]
        status = 409 if all(i.code == "CONFLICT" for i in issues) else 400
        return status, validation_error(issues)
    results, errors = [], []
    for n, inp in enumerate(inputs):
        trace = inp.get("objectWriteTraceId")
        extra = {"objectWriteTraceId": trace} if trace else {}
        if n in bad:
            errors.append(_input_error(checked[n][1], str(trace)))
            continue
        props = checked[n][0]
        if op == "create":
            results.append(store.create(obj, props).json(extra=extra))
            continue
        id_property = inp.get("idProperty")
        if op == "upsert" and id_property not in UNIQUE[obj]:
            return 400, error_body(
                f"{id_property} is not a unique property of {obj}", "VALIDATION_ERROR"
            )
        rec = store.get(obj, str(inp.get("id", "")), id_property)
        if rec is None and op == "upsert":
            rec = store.create(obj, {str(id_property): str(inp["id"]), **props})
            results.append(rec.json(extra={"new": True, **extra}))
        elif rec is None:
            errors.append(_not_found(obj, str(inp.get("id", "")), trace))
        else:
            store.update(rec, props)
            results.append(rec.json(extra={**({"new": False} if op == "upsert" else {}), **extra}))
    return _envelope(results, errors, 201 if op == "create" else 200)


def _values(op: str, inp: dict[str, Any]) -> dict[str, Any]:
    """An upsert by a unique property also sets it (and so validates it)."""
    values = dict(inp.get("properties") or {})
    if op == "upsert" and inp.get("idProperty") not in (None, "hs_object_id"):
        values.setdefault(str(inp["idProperty"]), inp.get("id"))
    return values


def _conflicts(
    store: Store, checked: list[tuple[dict[str, str], list[Issue]]]
) -> list[tuple[dict[str, str], list[Issue]]]:
    """Contacts' email is unique: a create that repeats one is a CONFLICT."""
    seen: dict[str, Rec | None] = {}
    out = []
    for props, issues in checked:
        email = props.get("email", "").lower()
        if email:
            prior = seen[email] if email in seen else store.get("contacts", email, "email")
            if prior is not None or email in seen:
                where = f" Existing ID: {prior.id}" if prior else ""
                issues = [*issues, Issue("email", "CONFLICT", f"Contact already exists.{where}")]
            seen.setdefault(email, prior)
        out.append((props, issues))
    return out


def _read(store: Store, obj: str, body: dict[str, Any], inputs: list[dict[str, Any]]) -> Answer:
    props = [str(p) for p in body.get("properties") or []] or None
    results, errors = [], []
    for inp in inputs:
        rec = store.get(obj, str(inp.get("id", "")), body.get("idProperty"))
        if rec is None:
            errors.append(_not_found(obj, str(inp.get("id", "")), None))
        else:
            results.append(rec.json(props))
    return _envelope(results, errors, 200)
