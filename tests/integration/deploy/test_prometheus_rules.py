"""deploy/prometheus/rules.yml: promtool checks it and runs its unit tests.

Each alert has a firing case and a case that must not fire
(deploy/prometheus/tests/alerts_test.yml). promtool comes from Debian's `prometheus`
package, which `make test` installs (`make prometheus`); without it these tests skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules.yml"
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*_test.yml"))
RUNBOOK = REPO / "deploy" / "RUNBOOK.md"


def promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool not installed: run `make prometheus` (Debian's prometheus package)")
    return exe


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alerts() -> list[str]:
    return [rule["alert"] for rule in rules() if "alert" in rule]


def test_promtool_checks_the_rule_file() -> None:
    proc = subprocess.run(
        [promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules())} rules found" in proc.stdout


def test_promtool_unit_tests_pass() -> None:
    assert UNIT_TESTS
    proc = subprocess.run(
        [promtool(), "test", "rules", *map(str, UNIT_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_firing_unit_test_and_a_runbook_section() -> None:
    fired: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                if check["exp_alerts"]:
                    fired.add(check["alertname"])
    assert set(alerts()) <= fired, f"no firing case for {set(alerts()) - fired}"
    anchors = {
        re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in RUNBOOK.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    for rule in rules():
        if "alert" in rule:
            runbook = rule["annotations"]["runbook"]
            assert runbook == f"deploy/RUNBOOK.md#{rule['alert'].lower()}"
            assert rule["alert"].lower() in anchors, f"RUNBOOK.md has no '## {rule['alert']}'"
