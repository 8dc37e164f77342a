"""Settings (contract §7): defaults, and bad values exit 2 with one line naming them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.errors import SettingsError
from service.pipeline.layout import Layout
from service.settings import Settings


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SECRETS_DIR": str(tmp_path), **extra}


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    assert s.topic_evaluations == "trailspark.evaluations.completed"
    assert s.topic_configs == "trailspark.destinations.config"
    assert s.topic_status == "trailspark.destinations.status"
    assert s.topic_retry == "trailspark.destinations.retry"
    assert s.topic_dlq == "trailspark.destinations.dlq"
    assert (s.consumer_group, s.http_port, s.shutdown_timeout_s) == (
        "trailspark-destinations",
        8080,
        25,
    )
    assert (s.max_attempts, s.retry_deadline_s, s.max_event_bytes) == (8, 86400, 1_048_576)
    assert s.kafka_client_args()["security_protocol"] == "PLAINTEXT"
    assert s.group_instance_id is None  # dynamic membership unless asked
    pinned = Settings.from_env({**env(tmp_path), "KAFKA_GROUP_INSTANCE_ID": "destinations-0"})
    assert pinned.group_instance_id == "destinations-0"


def test_the_two_stages_topics_and_groups(tmp_path: Path) -> None:
    layout = Layout.of(Settings.from_env(env(tmp_path)))
    assert (layout.work, layout.group, layout.work_group) == (
        "trailspark.destinations.work",
        "trailspark-destinations",
        "trailspark-destinations.work",
    )
    assert layout.tiers[:2] == [
        "trailspark.destinations.retry.by-org",
        "trailspark.destinations.retry.by-org.5s",
    ]
    assert layout.changelog == "trailspark.destinations.watermarks.by-org"
    assert layout.legacy_tiers[0] == "trailspark.destinations.retry"  # earlier versions'
    custom = Settings.from_env(env(tmp_path, TOPIC_WORK="w", WORK_PARTITIONS="24"))
    assert (custom.topic_work, custom.work_partitions) == ("w", 24)
    with pytest.raises(SettingsError, match="WORK_PARTITIONS"):
        Settings.from_env(env(tmp_path, WORK_PARTITIONS="twelve"))


def test_sasl_scram_reaches_the_client_args(tmp_path: Path) -> None:
    s = Settings.from_env(
        env(
            tmp_path,
            KAFKA_SECURITY_PROTOCOL="sasl_ssl",
            KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
            KAFKA_SASL_USERNAME="svc",
            KAFKA_SASL_PASSWORD="hunter2-hunter2",
        )
    )
    args = s.kafka_client_args()
    assert args["security_protocol"] == "SASL_SSL"
    assert args["sasl_mechanism"] == "SCRAM-SHA-512"
    assert args["sasl_plain_username"] == "svc"
    assert "ssl_context" in args
    assert "hunter2" not in repr(s)


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"HTTP_PORT": "eighty"}, "HTTP_PORT"),
        ({"HTTP_PORT": "70000"}, "HTTP_PORT"),
        ({"SECRETS_DIR": "/nonexistent/secrets"}, "SECRETS_DIR"),
        ({"CONFIG_FILE": "/nonexistent/configs.yaml"}, "CONFIG_FILE"),
        ({"KAFKA_BOOTSTRAP_SERVERS": ""}, "KAFKA_BOOTSTRAP_SERVERS"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"},
            "KAFKA_SASL_MECHANISM",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "KAFKA_SASL_USERNAME"),
        ({"MAX_ATTEMPTS": "0"}, "MAX_ATTEMPTS"),
        ({"SHUTDOWN_TIMEOUT_S": "soon"}, "SHUTDOWN_TIMEOUT_S"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_bad_setting_exits_2_with_one_line(
    tmp_path: Path, extra: dict[str, str], setting: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(tmp_path, **extra))
    assert caught.value.setting == setting
    proc = subprocess.run(
        [sys.executable, "-m", "service"],
        env={"PATH": os.environ["PATH"], **env(tmp_path, **extra)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0], proc.stderr


def test_unparseable_config_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "configs.yaml"
    bad.write_text("- [unclosed")
    proc = subprocess.run(
        [sys.executable, "-m", "service"],
        env={"PATH": os.environ["PATH"], **env(tmp_path, CONFIG_FILE=str(bad), HTTP_PORT="0")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "CONFIG_FILE" in proc.stderr.strip().splitlines()[-1]
