"""Write deploy/k8s/components/platform/prometheusrule.yaml from deploy/prometheus/rules.yml.

The rule file is the source (promtool checks and unit-tests it); the PrometheusRule
carries its groups unchanged for the Prometheus Operator. `make prometheusrule` runs
this; tests/integration/deploy/test_deploy.py fails when the two disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules.yml"
TARGET = HERE.parent / "k8s" / "components" / "platform" / "prometheusrule.yaml"
HEADER = "# GENERATED from deploy/prometheus/rules.yml by `make prometheusrule`: do not edit.\n"


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None  # keep multi-line PromQL readable
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def prometheus_rule(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "trailspark-destinations"},
        "spec": {"groups": groups},
    }


def main() -> None:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    text = yaml.dump(prometheus_rule(groups), Dumper=_Dumper, sort_keys=False, width=120)
    TARGET.write_text(HEADER + text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(Path.cwd()) if TARGET.is_relative_to(Path.cwd()) else TARGET}")


if __name__ == "__main__":
    sys.exit(main())
