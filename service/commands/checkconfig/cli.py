"""`python -m service check-config --config FILE [--org ORG]`.

Prints one line per problem, `org/destination target Object.field: problem`,
then a summary. Exit 0 when nothing would fail, 1 when something would (or a
schema cannot be read), 2 for a bad argument, setting or config file. Needs
SECRETS_DIR (and DESTINATION_CA_FILE for a private CA); no Kafka setting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml

from service.commands.checkconfig import airtable, hubspot, salesforce
from service.commands.checkconfig.compare import Problem, check, objects_of
from service.commands.checkconfig.fields import Schemas
from service.config.validation import parse_obj, validate
from service.destinations import build_readers
from service.destinations.base import Destination
from service.errors import ConfigRejected, DeliveryError
from service.models import DestinationConfig
from service.redact import redact
from service.secrets import SecretStore

DEFAULT_SECRETS_DIR = "/var/run/secrets/trailspark"
# The destination's `describe` reads the schemas (read-only); these read its answers.
PARSERS: dict[str, Callable[[Mapping[str, Any]], Schemas]] = {
    "salesforce": salesforce.schemas,
    "hubspot": hubspot.schemas,
    "airtable": airtable.schemas,
}


class BadInput(Exception):
    """A bad argument, setting or config file: one line, exit code 2."""


def load(path: Path, org: str | None) -> list[DestinationConfig]:
    """Each config of the file (JSON or YAML, one or a list), validated."""
    try:
        text = path.read_bytes()
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, orjson.JSONDecodeError, yaml.YAMLError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"cannot read config {str(path)!r}: {problem}") from None
    entries = data if isinstance(data, list) else [data]
    out = []
    for n, entry in enumerate(entries):
        try:
            config = validate(parse_obj(entry))
        except ConfigRejected as exc:
            raise BadInput(f"invalid config (entry {n}): {exc.reason}: {exc.message}") from None
        if org is None or config.org_id == org:
            out.append(config)
    if not out:
        raise BadInput(f"no config{f' for org {org!r}' if org else ''} in {str(path)!r}")
    return out


async def _schemas(
    destination: Destination, secrets: SecretStore, config: DestinationConfig
) -> Schemas:
    described = await destination.describe(config, secrets.load(config), objects_of(config))
    return PARSERS[config.destination](described)


async def run(configs: list[DestinationConfig], secrets: SecretStore, ca: Path | None) -> list[str]:
    """The problem lines, config after config (schemas are read one config at a time)."""
    lines: list[str] = []
    destinations = build_readers(ca)
    try:
        for config in configs:
            try:
                schemas = await _schemas(destinations[config.destination], secrets, config)
            except (DeliveryError, ValueError) as exc:
                text = exc.message if isinstance(exc, DeliveryError) else str(exc)
                problem = Problem("schema", f"cannot be read: {redact(text)}")
                lines.append(problem.line(config))
                continue
            lines += [p.line(config) for p in check(config, schemas)]
    finally:
        for destination in destinations.values():
            await destination.close()
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service check-config",
        description="List what each destination config would fail on, from the CRM's own "
        "field schema (read-only calls; credentials from SECRETS_DIR). Exit 0: nothing "
        "would fail; 1: something would; 2: bad argument or config.",
    )
    parser.add_argument(
        "--config", type=Path, required=True, help="DestinationConfig(s), JSON/YAML"
    )
    parser.add_argument("--org", help="check only this org's configs")
    return parser


def _settings() -> tuple[SecretStore, Path | None]:
    secrets_dir = Path(os.environ.get("SECRETS_DIR") or DEFAULT_SECRETS_DIR)
    if not secrets_dir.is_dir():
        raise BadInput(f"SECRETS_DIR {str(secrets_dir)!r} is not a directory")
    raw_ca = os.environ.get("DESTINATION_CA_FILE")
    ca = Path(raw_ca) if raw_ca else None
    if ca is not None and not os.access(ca, os.R_OK):
        raise BadInput(f"DESTINATION_CA_FILE {raw_ca!r} is not a readable file")
    return SecretStore(secrets_dir), ca


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, a bad argument 2
        return int(exc.code or 0)
    try:
        configs = load(args.config, args.org)
        secrets, ca = _settings()
    except BadInput as exc:
        print(f"check-config: {exc}", file=sys.stderr)
        return 2
    lines = asyncio.run(run(configs, secrets, ca))
    for line in lines:
        print(line)
    failing = len({line.split(" ", 1)[0] for line in lines})
    if lines:
        print(
            f"check-config: {len(lines)} problem(s) in {failing} of {len(configs)} config(s); "
            "each would make deliveries fail"
        )
        return 1
    print(f"check-config: {len(configs)} config(s) checked, nothing would fail")
    return 0
