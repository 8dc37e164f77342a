"""`make lint`'s vulnerability audit: pip-audit over the hashed lock file.

Fails on a known vulnerability. When the vulnerability database cannot be
reached (no network, a registry mirror without the JSON API: then every package
comes back "not found"), it says so and passes: an audit that could not run is
reported, not mistaken for a clean one, and it does not block the build.

    python -m devkit.audit requirements.lock
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

_OFFLINE = re.compile(
    r"Could not connect|ConnectionError|Name or service not known|Max retries|timed out",
    re.IGNORECASE,
)


def verdict(returncode: int, stdout: str, stderr: str) -> tuple[int, str]:
    """(exit code, one-paragraph summary) for a `pip-audit --format json` run. Pure."""
    try:
        report: dict[str, Any] = json.loads(stdout) if stdout.strip() else {}
    except json.JSONDecodeError:
        report = {}
    deps = report.get("dependencies", [])
    vulnerable = [
        f"{d['name']} {d.get('version', '?')}: {', '.join(v['id'] for v in d['vulns'])}"
        for d in deps
        if d.get("vulns")
    ]
    if vulnerable:
        return 1, "pip-audit: known vulnerabilities:\n  " + "\n  ".join(vulnerable)
    if returncode != 0:
        if _OFFLINE.search(stderr):
            return 0, "pip-audit: vulnerability database unreachable; audit NOT done (not failing)"
        return returncode, "pip-audit failed:\n" + stderr.strip()
    skipped = [d["name"] for d in deps if d.get("skip_reason")]
    if deps and len(skipped) == len(deps):
        return 0, (
            f"pip-audit: vulnerability database unreachable (none of the {len(deps)} packages "
            "could be looked up); audit NOT done (not failing)"
        )
    audited = len(deps) - len(skipped)
    note = f"; not audited: {', '.join(skipped)}" if skipped else ""
    return 0, f"pip-audit: no known vulnerabilities in {audited} packages{note}"


def main(argv: list[str]) -> int:
    lock = Path(argv[0] if argv else "requirements.lock")
    command = [
        str(Path(sys.executable).with_name("pip-audit")),
        "--disable-pip",  # the lock is fully hashed: no resolution, no temporary venv
        "--requirement",
        str(lock),
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    code, summary = verdict(proc.returncode, proc.stdout, proc.stderr)
    print(summary, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
