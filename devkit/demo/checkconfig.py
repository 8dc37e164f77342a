"""The demo's check-config scene: `python -m service check-config` once, on a
deliberately broken copy of org_demo's configs, against the sandboxes (whose
Salesforce Lead gets a restricted `Rating` picklist and a Date field for it)."""

from __future__ import annotations

import asyncio
import copy
import sys
from pathlib import Path
from typing import Any

import orjson

from devkit.demo.data import demo_configs
from devkit.demo.feed import say
from devkit.sandboxes.salesforce import SalesforceSandbox
from devkit.sandboxes.salesforce.schema import SfField

RATING = SfField("picklist", 40, values=("Hot", "Warm", "Cold"), restricted=True)


def broken(org: str) -> list[dict[str, Any]]:
    """Three mistakes a new user makes: a picklist without a values map, a Date
    field for a date-time, a misspelt property, a match column that is not there."""
    salesforce, hubspot, airtable = copy.deepcopy(demo_configs(org))
    salesforce["targets"][0]["fields"].update(score="Rating", evaluated_at="TS_Evaluated_On__c")
    hubspot["targets"][0]["fields"]["reasoning"] = "ts_reasonning"
    airtable["targets"][0]["match"]["crm_field"] = "E-mail"
    return [salesforce, hubspot, airtable]


async def check_config_scene(
    org: str, work: Path, sf: SalesforceSandbox, env: dict[str, str]
) -> None:
    sf.define("Lead", {"Rating": RATING, "TS_Evaluated_On__c": SfField("date", 0)})
    config_file = work / "broken-configs.json"
    config_file.write_bytes(orjson.dumps(broken(org), option=orjson.OPT_INDENT_2))
    say(f"check-config on a deliberately broken config ({config_file.name}), before saving it:")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "check-config", "--config", str(config_file),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    for line in out.decode().splitlines():
        say(f"  {line}")
    say(f"check-config exit {proc.returncode} (0: nothing would fail, 1: something would)")
