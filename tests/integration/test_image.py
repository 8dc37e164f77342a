"""What the container image runs, checked without a container engine (none exists here).

The Dockerfile builds the wheel, installs it into a venv and runs `python -m service`
as uid/gid 10001 with a read-only root filesystem. This test does the same steps on
the host: build the wheel from a copy of the sources, install it into a fresh venv,
start `python -m service` as a throwaway non-root uid (setpriv, when the tests run as
root) from a read-only working directory, against the test broker, and wait for
/readyz. The wheel's dependencies are borrowed from the dev venv through a .pth file
(tests reach only loopback, so no index); the service itself must come from the wheel.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.harness import FAST, create_input_topics, topic_env
from service.metrics import package_version

REPO = Path(__file__).resolve().parents[2]
UID = GID = 10001  # the image's user, and the pod's runAsUser (deploy/k8s/base)
PROBE = (
    "import os, service, importlib.metadata as m; "
    "print(service.__file__, m.version('trailspark-destinations'), "
    "os.geteuid(), os.access('.', os.W_OK))"
)


def _run(*args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False, **kw
    )  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc  # type: ignore[no-any-return]


@pytest.fixture
def root() -> Iterator[Path]:
    # Not pytest's tmp_path: that is 0700 and the throwaway uid must traverse it.
    path = Path(tempfile.mkdtemp(prefix="ts-image-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _install_wheel(root: Path) -> Path:
    src = root / "src"
    shutil.copytree(REPO / "service", src / "service", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", src)
    wheels = root / "wheels"
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    _run(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, src)
    (wheel,) = wheels.glob("trailspark_destinations-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", wheel)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    deps = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    (site / "zz_dev_dependencies.pth").write_text(f"{deps}\n", encoding="utf-8")
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.slow
def test_the_wheel_runs_as_non_root_from_a_read_only_directory(
    kafka_bootstrap: str, root: Path
) -> None:
    python = _install_wheel(root)
    workdir, secrets = root / "work", root / "secrets"
    secrets.mkdir(mode=0o755)
    workdir.mkdir()
    workdir.chmod(0o555)  # owned by the test user, read-only to the service's uid
    state = root / "state"  # the pod's emptyDir at STATE_DIR: the service's own
    state.mkdir()
    if os.geteuid() == 0:
        os.chown(state, UID, GID)
    as_user: list[str] = []
    if os.geteuid() == 0:  # drop to the image's uid; otherwise we already are non-root
        as_user = ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups"]
    port = _free_port()
    topics = topic_env(f"img{port}")
    asyncio.run(create_input_topics(kafka_bootstrap, topics, partitions=2))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "PYTHONDONTWRITEBYTECODE": "1",
        **FAST,
        **topics,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SECRETS_DIR": str(secrets),
        "STATE_DIR": str(state),
        "HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
    }

    probe = _run(*as_user, python, "-c", PROBE, cwd=workdir, env=env).stdout.split()
    assert Path(probe[0]).is_relative_to(root / "venv"), f"service imported from {probe[0]}"
    assert probe[1] == package_version()
    assert probe[2] != "0", "runs as root"
    assert probe[3] == "False", "the working directory is writable"

    log = root / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*as_user, str(python), "-m", "service"], cwd=workdir, env=env, stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + 60
            while _status(f"http://127.0.0.1:{port}/readyz") != 200:
                assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"never ready:\n{log.read_text()}"
                time.sleep(0.2)
            uids = Path(f"/proc/{proc.pid}/status").read_text().split("Uid:")[1].split()[:4]
            assert "0" not in uids, uids
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                metrics = resp.read().decode()
            assert f'trailspark_destinations_build_info{{version="{probe[1]}"}} 1.0' in metrics
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert list(workdir.iterdir()) == []


def test_dockerfile_matches_what_this_test_and_the_pod_expect() -> None:
    lines = [
        line.strip()
        for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in lines
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith(" AS build"), "multi-stage"
    assert lines[-1] == 'ENTRYPOINT ["python", "-m", "service"]'
    assert f"USER {UID}:{GID}" in lines
    assert "COPY --from=build /opt/venv /opt/venv" in lines
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignored[1:4] == ["*", "!pyproject.toml", "!service/"]
