"""The product stays apart from the dev tools: `service/` imports neither `devkit/`
nor `tests/`, `devkit/` imports neither `tests/` nor `bench/`, `bench/` reaches the
dev tools through `devkit/` (never `tests/`), and neither the wheel nor the image
carries anything but `service/`."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEV = ("devkit", "tests", "bench")


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """Every absolute module an import statement names (relative ones stay in the package)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def offenders(package: str, banned: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, module in imported(path):
            if module.split(".")[0] in banned:
                found.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return found


def test_the_walk_sees_imports_of_every_form(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("import tests.x\nfrom devkit import fleet\nfrom . import y\nimport os\n")
    assert [m for _, m in imported(src)] == ["tests.x", "devkit", "os"]


def test_the_service_imports_no_dev_code() -> None:
    assert list((REPO / "service").rglob("*.py")), "no service/ sources found"
    assert offenders("service", DEV) == []


def test_the_dev_tools_import_neither_tests_nor_benchmarks() -> None:
    assert offenders("devkit", ("tests", "bench")) == []


def test_the_benchmarks_use_devkit_not_the_tests() -> None:
    assert offenders("bench", ("tests",)) == []
    users = [
        p
        for p in (REPO / "bench").rglob("*.py")
        if any(m.startswith("devkit") for _, m in imported(p))
    ]
    assert users, "bench/ no longer imports devkit: is this test still looking at bench/?"


def test_the_package_config_ships_only_the_service() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["setuptools"]["packages"]["find"]["include"] == ["service*"]
    copied = re.findall(r"^COPY\s+(?!--from)(\S+)", (REPO / "Dockerfile").read_text(), re.M)
    assert sorted(copied) == ["pyproject.toml", "service"]


@pytest.mark.slow
def test_the_wheel_built_from_the_whole_tree_holds_only_the_service(tmp_path: Path) -> None:
    # The whole tree, dev code included, so a widened package discovery would show.
    src = tmp_path / "src"
    for name in ("service", *DEV):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", src)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "-q"]
    subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheels"), str(src)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    (wheel,) = (tmp_path / "wheels").glob("trailspark_destinations-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert "service" in tops
    assert {t for t in tops if not t.endswith(".dist-info")} == {"service"}
