"""Supply chain (issue 13): the lock file pins every dependency with hashes and
matches pyproject.toml, and the audit tells a vulnerability, an unreachable
database and a clean result apart."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import orjson
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devkit.audit import verdict

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) from requirements.lock."""
    entries: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match.group(1))
            entries[current] = (match.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = entries[current]
            entries[current] = (version, hashes + 1)
    return entries


def test_the_lock_pins_every_dependency_of_pyproject_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pins = locked()
    assert pins and all(hashes >= 1 for _, hashes in pins.values())
    for spec in map(Requirement, wanted):
        name = canonicalize_name(spec.name)
        assert name in pins, f"{spec.name} is not in requirements.lock: run `make lock`"
        version = pins[name][0]
        assert spec.specifier.contains(version, prereleases=True), (
            f"{spec.name}=={version} does not satisfy {spec.specifier}: run `make lock`"
        )


def test_the_lock_was_made_for_python_3_11_on_linux() -> None:
    header = (ROOT / "requirements.lock").read_text().splitlines()[1]
    assert "--generate-hashes" in header
    assert "--python-version 3.11" in header and "linux" in header


def report(*deps: dict[str, object]) -> str:
    return orjson.dumps({"dependencies": list(deps), "fixes": []}).decode()


def test_a_known_vulnerability_fails_the_audit() -> None:
    code, summary = verdict(
        1,
        report(
            {
                "name": "aiohttp",
                "version": "3.9.0",
                "vulns": [{"id": "GHSA-xxxx", "fix_versions": []}],
            },
            {"name": "orjson", "version": "3.10.0", "vulns": []},
        ),
        "",
    )
    assert code == 1 and "aiohttp 3.9.0: GHSA-xxxx" in summary


def test_an_unreachable_database_is_said_and_does_not_fail() -> None:
    offline = "ERROR:pip_audit._cli:Could not connect to PyPI's vulnerability feed"
    code, summary = verdict(1, "", offline)
    assert code == 0 and "unreachable" in summary and "NOT done" in summary
    skipped = {"name": "x", "skip_reason": "Dependency not found on PyPI and could not be audited"}
    code, summary = verdict(0, report(skipped, {**skipped, "name": "y"}), "")
    assert code == 0 and "none of the 2 packages" in summary


def test_a_clean_audit_and_a_broken_run() -> None:
    code, summary = verdict(0, report({"name": "x", "version": "1", "vulns": []}), "")
    assert (code, summary) == (0, "pip-audit: no known vulnerabilities in 1 packages")
    code, summary = verdict(2, "", "usage: pip-audit: error: bad flag")
    assert code == 2 and "bad flag" in summary
