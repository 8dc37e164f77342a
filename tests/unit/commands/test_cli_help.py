"""`python -m service --help` and each command's `--help` (issue 21): they answer with
an empty environment, exit 0, and list the commands and the main settings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.commands.usage import COMMANDS, MAIN_SETTINGS, default

ROOT = Path(__file__).resolve().parents[3]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # env={}: no KAFKA_BOOTSTRAP_SERVERS, no SECRETS_DIR, nothing.
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT, env={}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_help_lists_the_commands_and_the_main_settings_without_any_setting() -> None:
    done = run("--help")
    assert done.returncode == 0, done.stderr
    assert "usage: python -m service" in done.stdout
    assert "Without a command: run the service" in done.stdout
    for name in ("preview", "replay-dlq", "check-config", "trace"):
        assert re.search(rf"^\s+{name}\b", done.stdout, re.M), name
    for name, attr, _ in MAIN_SETTINGS:
        assert re.search(rf"^\s+{name}\s.*default {re.escape(default(attr))}$", done.stdout, re.M)
    assert "default (required)" in done.stdout  # KAFKA_BOOTSTRAP_SERVERS has none


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_its_own_help(command: str) -> None:
    done = run(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m service {command}")


def test_an_unknown_argument_exits_2_with_the_usage() -> None:
    done = run("--no-such-flag")
    assert done.returncode == 2
    assert "usage: python -m service" in done.stderr


def test_the_main_settings_are_read_by_the_service() -> None:
    settings = (ROOT / "service" / "settings.py").read_text()
    for name, _, _ in MAIN_SETTINGS:
        assert f'"{name}"' in settings, name
