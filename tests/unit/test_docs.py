"""The README a newcomer reads first, and the docs it points to (issue 21): short,
the two commands first, links that resolve, an example config that is valid, and
every setting documented with the default the code has."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import orjson

from service.models import DestinationConfig
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
CONFIGURATION = ROOT / "docs" / "configuration.md"


def test_the_readme_fits_two_screens_and_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 120
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in first_block.strip().splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    for page in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "#")):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{page.name}: {target}"


def test_the_readme_config_example_is_a_valid_destination_config() -> None:
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(), re.S)
    config = DestinationConfig.model_validate(orjson.loads(blocks[0]))
    assert config.integration.credentials_ref == f"{config.org_id}-{config.destination}"
    assert f"$SECRETS_DIR/{config.integration.credentials_ref}.json" in README.read_text()


def test_every_setting_is_documented_with_the_default_in_the_code() -> None:
    code = (ROOT / "service" / "settings.py").read_text()
    names = set(re.findall(r'"((?:KAFKA|TOPIC)_[A-Z_]+|[A-Z]+(?:_[A-Z]+)+)"', code))
    names -= {"SASL_SSL", "SASL_PLAINTEXT"}  # values, not settings
    table = CONFIGURATION.read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)`(?: / `[A-Z_]+`)? \| ([^|]+) \|", table, re.M))
    documented = set(rows) | set(re.findall(r"/ `([A-Z_]+)` \|", table))
    assert names <= documented, names - documented
    defaults = {f.name: f.default for f in fields(Settings)}
    checked = 0
    for name, cell in rows.items():
        number = re.fullmatch(r"`(\d+)`", cell.strip())
        attr = name.lower().removeprefix("kafka_")
        if number and isinstance(defaults.get(attr), int | float):
            assert float(number.group(1)) == defaults[attr], name
            checked += 1
    assert checked >= 12
