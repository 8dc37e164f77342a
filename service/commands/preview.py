"""`python -m service preview --config FILE --event FILE [--lookup]`.

Prints, per destination and target, the exact fields and values an event would
write (truncation applied), how the record is found, and what happens when it
is not; with `--lookup`, the records it matches now, found with read-only calls
(service/commands/preview_lookup.py; needs SECRETS_DIR and the credentials files). No
broker and no Kafka settings. Exit 0, or 2 with one line for a bad config or
event, or 1 when a lookup cannot be made.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from service.config.validation import parse_obj, validate
from service.destinations import airtable, hubspot, salesforce
from service.destinations.mapping import crm_id, lead_value, propensity_value
from service.errors import ConfigRejected, DeliveryError, InvalidEvent
from service.models import DestinationConfig, EvaluationCompleted, Target
from service.pipeline.decode import decode_event

MAX_EVENT_BYTES = 1_048_576
# Each CRM's own mapping (pure): (the fields an update writes, what a create writes).
VALUES = {
    "salesforce": salesforce.preview_values,
    "hubspot": hubspot.preview_values,
    "airtable": airtable.preview_values,
}


class PreviewError(Exception):
    """A bad input file: one line, exit code 2."""


def load_configs(path: Path) -> list[DestinationConfig]:
    """A DestinationConfig, or a list of them, as JSON or YAML; each one validated."""
    try:
        text = path.read_bytes()
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, orjson.JSONDecodeError, yaml.YAMLError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PreviewError(f"invalid config {str(path)!r}: {problem}") from None
    entries = data if isinstance(data, list) else [data]
    configs = []
    for n, entry in enumerate(entries):
        try:
            configs.append(validate(parse_obj(entry)))
        except ConfigRejected as exc:
            where = f" (entry {n})" if isinstance(data, list) else ""
            raise PreviewError(f"invalid config{where}: {exc.reason}: {exc.message}") from None
    if not configs:
        raise PreviewError(f"invalid config {str(path)!r}: no configs in it")
    return configs


def load_event(path: Path) -> EvaluationCompleted:
    try:
        return decode_event(path.read_bytes(), MAX_EVENT_BYTES)
    except OSError as exc:
        raise PreviewError(f"invalid event {str(path)!r}: {type(exc).__name__}") from None
    except InvalidEvent as exc:
        raise PreviewError(f"invalid event: {exc.code}: {exc.message}") from None


def _record(
    config: DestinationConfig, target: Target, event: EvaluationCompleted
) -> dict[str, Any]:
    known = crm_id(event, config.destination, target.object)
    if known:
        return {"by": "crm_id", "id": known}
    if target.match is None:
        return {"by": "nothing", "note": "no match field: never written"}
    value = lead_value(event, target.match.event_field)
    if value is None:
        return {"by": "nothing", "note": f"the lead has no {target.match.event_field}"}
    return {"by": "match", "field": target.match.crm_field, "value": value}


def _target(
    config: DestinationConfig, target: Target, event: EvaluationCompleted
) -> dict[str, Any]:
    cut: list[str] = []
    dest = config.destination
    record = _record(config, target, event)
    value = record.get("value")
    fields, create = VALUES[dest](config, target, event, value, cut.append)
    out: dict[str, Any] = {"object": target.object, "record": record, "fields": fields}
    if record["by"] != "nothing":
        out["if_not_found"] = (
            {"create": create} if target.create_if_missing else "skipped: record_not_found"
        )
    if dest == "salesforce":
        auto = "TRUE on create" if target.assign_on_create else "FALSE"
        out["Sforce-Auto-Assign"] = auto
    if cut:
        out["truncated"] = sorted(set(cut))
    return out


def render(config: DestinationConfig, event: EvaluationCompleted) -> dict[str, Any]:
    """What one destination would write for the event: pure, no I/O."""
    out: dict[str, Any] = {
        "destination": config.destination,
        "org_id": config.org_id,
        "version": config.version,
    }
    if event.org_id != config.org_id:
        out["note"] = f"the event's org {event.org_id!r} is not this config's: nothing is written"
    elif not config.send_evaluations:
        out["note"] = "send_evaluations is false: inactive, no status"
    elif config.integration.status != "connected":
        out["note"] = "not connected: every evaluation is skipped (integration_not_connected)"
    out["targets"] = [_target(config, t, event) for t in config.targets]
    prop = config.propensity
    if prop is not None and prop.enabled and config.destination != "airtable":
        level = event.evaluation.propensity
        value = lead_value(event, prop.match.event_field)
        known = crm_id(event, config.destination, prop.object)
        record = (
            {"by": "crm_id", "id": known}
            if known
            else {"by": "match", "field": prop.match.crm_field, "value": value}
        )
        out["propensity"] = (
            {
                "object": prop.object,
                "record": record,
                "fields": {prop.field: propensity_value(prop, level)},
            }
            if level is not None
            else {"object": prop.object, "note": "the event has no propensity: not written"}
        )
    if config.max_daily_api_share is not None:
        out["max_daily_api_share"] = config.max_daily_api_share
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service preview",
        description="Show what an event would write, per destination and target.",
    )
    parser.add_argument("--config", type=Path, required=True, help="DestinationConfig (JSON/YAML)")
    parser.add_argument("--event", type=Path, required=True, help="EvaluationCompleted (JSON)")
    parser.add_argument(
        "--lookup", action="store_true", help="find the records now (read-only; SECRETS_DIR)"
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        configs = load_configs(args.config)
        event = load_event(args.event)
    except PreviewError as exc:
        print(f"preview: {exc}", file=sys.stderr)
        return 2
    previews = [render(c, event) for c in configs]
    if args.lookup:
        from service.commands.preview_lookup import look_up  # I/O only when asked for

        try:
            asyncio.run(look_up(configs, event, previews))
        except (DeliveryError, PreviewError) as exc:
            print(f"preview: lookup failed: {exc}", file=sys.stderr)
            return 1
    sys.stdout.write(orjson.dumps(previews, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
