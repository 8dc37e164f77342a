"""Bytes -> EvaluationCompleted, or InvalidEvent with the DLQ code and stage (§3, §6).

Pure and cheap: pydantic's own JSON parser straight into the model; only a
failure is classified, with the same parser (orjson refuses `1e400`, which the
model accepts in a field it ignores: the code must name the real problem).
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import from_json

from service.errors import InvalidEvent
from service.models import EVENT, EvaluationCompleted


def decode_event(value: bytes | None, max_bytes: int) -> EvaluationCompleted:
    if value is not None and len(value) <= max_bytes:
        try:  # fast path: pydantic's own JSON parser, straight into the model
            return EVENT.validate_json(value)
        except ValidationError:
            pass  # classify the problem below, on the slow path
    return _classify(value, max_bytes)


def _classify(value: bytes | None, max_bytes: int) -> EvaluationCompleted:
    if value is None:
        raise InvalidEvent("null_value", "event value is null", "deserialize")
    if len(value) > max_bytes:
        raise InvalidEvent(
            "event_too_large", f"event is {len(value)} bytes, limit {max_bytes}", "deserialize"
        )
    try:
        data = from_json(value)
    except ValueError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent("invalid_utf8", "event is not UTF-8", "deserialize") from None
        raise InvalidEvent("invalid_json", f"invalid JSON: {exc}", "deserialize") from None
    if not isinstance(data, dict):
        raise InvalidEvent("invalid_field", "event is not a JSON object", "validate")
    version = data.get("schema_version")
    if version != 1:
        raise InvalidEvent(
            "unsupported_schema_version", f"schema_version {version!r} is not supported", "validate"
        )
    try:
        return EVENT.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        code = "missing_field" if first["type"] == "missing" else "invalid_field"
        raise InvalidEvent(code, f"{where}: {first['msg']}", "validate") from None
