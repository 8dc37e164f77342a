"""`python -m service --help`: the commands and the main settings, read from
`Settings` (names and defaults), so the help needs no setting to be set."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

from service.settings import Settings

# name -> one line; the tools' own `--help` has the rest.
COMMANDS = {
    "preview": "show what an event would write, per destination and target (no Kafka)",
    "replay-dlq": "republish dead-lettered events to the evaluations topic",
    "check-config": "check destination configs against the CRMs' field schemas",
    "trace": "every status of one lead, oldest first, from the status topic",
}

# (variable, Settings field, meaning): the ones a first deployment sets or reads about.
MAIN_SETTINGS = (
    ("KAFKA_BOOTSTRAP_SERVERS", "bootstrap_servers", "host:port[,host:port]"),
    ("KAFKA_SECURITY_PROTOCOL", "security_protocol", "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ("KAFKA_CONSUMER_GROUP", "consumer_group", "stage 1's group; stage 2's is {group}.work"),
    ("TOPIC_EVALUATIONS", "topic_evaluations", "input: lead evaluations"),
    ("TOPIC_CONFIGS", "topic_configs", "input: destination configs (compacted)"),
    ("TOPIC_STATUS", "topic_status", "output: delivery statuses"),
    ("TOPIC_DLQ", "topic_dlq", "output: events that cannot be delivered"),
    ("SECRETS_DIR", "secrets_dir", "holds {credentials_ref}.json (must exist)"),
    ("CONFIG_FILE", "config_file", "JSON or YAML list of configs loaded at start"),
    ("HTTP_PORT", "http_port", "/metrics, /healthz, /readyz, /v1/destinations"),
    ("LOG_LEVEL", "log_level", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("MAX_ATTEMPTS", "max_attempts", "write attempts before `failed`"),
    ("STATE_DIR", "state_dir", "where the watermark state stores live"),
)


def default(field_name: str) -> str:
    """The Settings default as text; "(none)" for an unset optional, "(required)"."""
    found = next(f for f in fields(Settings) if f.name == field_name)
    if found.default is MISSING:
        return "(required)"
    return "(none)" if found.default is None else str(found.default)


def epilog() -> str:
    width = max(len(name) for name, _, _ in MAIN_SETTINGS)
    rows = [
        f"  {name:<{width}}  {text}; default {default(attr)}" for name, attr, text in MAIN_SETTINGS
    ]
    return "\n".join(
        [
            "main settings (environment variables; all of them: docs/configuration.md):",
            *rows,
            "",
            "Exit codes of the service: 0 after a clean shutdown, 1 after the brokers were",
            "away for BROKER_UNAVAILABLE_EXIT_S, 2 for a bad setting (one line naming it).",
        ]
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m service",
        description="Without a command: run the service until SIGTERM/SIGINT, settings from "
        "the environment. With one: run that tool (`python -m service COMMAND --help`).",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")
    for name, text in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return p
