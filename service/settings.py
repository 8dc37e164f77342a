"""Settings from environment variables (contract §7), with the defaults docs/configuration.md lists.

`Settings.from_env()` raises `SettingsError` naming the first bad setting;
`python -m service` turns that into one line on stderr and exit code 2.
"""

from __future__ import annotations

import math
import os
import ssl
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import SecretStr

from service.errors import SettingsError
from service.kafka_auth import TLS_PROTOCOLS, KafkaAuth

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class _Env:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value or default

    def number(self, name: str, default: float, *, kind: type = int, minimum: float = 0) -> Any:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(name, f"expected {kind.__name__}, got {raw!r}") from None
        if not math.isfinite(value):  # inf and nan parse as floats, then overflow clocks
            raise SettingsError(name, f"must be a finite number, got {raw!r}")
        if value < minimum:
            raise SettingsError(name, f"must be >= {minimum}, got {raw!r}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.text(name) or default).upper()
        if value not in choices:
            raise SettingsError(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def config_file(self, name: str) -> Path | None:
        """CONFIG_FILE, parsed up front so that an unreadable file stops the start."""
        path = self.readable_file(name)
        if path is not None:
            read_config_file(path, name)
        return path

    def writable_dir(self, name: str, default: Path) -> Path:
        """A directory this process can write (created when missing)."""
        path = Path(self.text(name) or str(default))
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(name, f"cannot create {str(path)!r}: {exc.strerror}") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise SettingsError(name, f"directory {str(path)!r} is not writable")
        return path

    def readable_file(self, name: str) -> Path | None:
        raw = self.text(name)
        if raw is None:
            return None
        path = Path(raw)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise SettingsError(name, f"file {raw!r} is missing or unreadable")
        return path


def read_config_file(path: Path, name: str = "CONFIG_FILE") -> tuple[object, ...]:
    """A JSON or YAML list of DestinationConfig (entries are validated later)."""
    try:
        text = path.read_bytes()
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, orjson.JSONDecodeError, yaml.YAMLError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(name, f"cannot parse {str(path)!r}: {problem}") from None
    if not isinstance(data, list):
        raise SettingsError(name, f"{str(path)!r} must hold a list of configs")
    return tuple(data)


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None  # with ssl_keyfile: mutual TLS to the brokers
    ssl_keyfile: Path | None = None
    consumer_group: str = "trailspark-destinations"
    group_instance_id: str | None = None  # static membership: a restart keeps its partitions
    session_timeout_ms: int = 10_000
    topic_evaluations: str = "trailspark.evaluations.completed"
    topic_configs: str = "trailspark.destinations.config"
    topic_status: str = "trailspark.destinations.status"
    topic_retry: str = "trailspark.destinations.retry"
    topic_dlq: str = "trailspark.destinations.dlq"
    topic_watermarks: str = "trailspark.destinations.watermarks"
    # Internal: valid evaluations keyed by org (service/pipeline/layout.py); its
    # partition count is the fleet's ceiling. 0: as many as the evaluations topic.
    topic_work: str = "trailspark.destinations.work"
    work_partitions: int = 0
    topic_replication_factor: int = 1
    secrets_dir: Path = Path("/var/run/secrets/trailspark")
    config_file: Path | None = None
    destination_ca_file: Path | None = None
    log_level: str = "INFO"
    log_format: str = "json"
    http_port: int = 8080
    shutdown_timeout_s: float = 25.0
    max_event_bytes: int = 1_048_576
    max_attempts: int = 8
    retry_deadline_s: float = 86_400.0
    retry_backoff_base_s: float = 60.0
    retry_backoff_max_s: float = 3600.0
    batch_linger_ms: int = 50
    lane_capacity: int = 20_000
    max_inflight: int = 20_000
    max_inflight_bytes: int = 128 * 1024 * 1024
    commit_interval_ms: int = 1_000
    destination_timeout_s: float = 30.0
    state_dir: Path = Path(tempfile.gettempdir()) / "trailspark-destinations-state"
    broker_unavailable_exit_s: float = 300.0

    @property
    def config_entries(self) -> tuple[object, ...]:
        """CONFIG_FILE's entries, read again on each use: held for the process's
        life, 30,000 parsed configs were 2 KB per (org, destination) (issue 23)."""
        return read_config_file(self.config_file) if self.config_file is not None else ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = _Env(os.environ if env is None else env)
        kafka = _kafka_fields(e)
        secrets_dir = Path(e.text("SECRETS_DIR", "/var/run/secrets/trailspark") or "")
        if not secrets_dir.is_dir():
            raise SettingsError("SECRETS_DIR", f"directory {str(secrets_dir)!r} does not exist")
        log_format = (e.text("LOG_FORMAT") or ("text" if sys.stderr.isatty() else "json")).lower()
        if log_format not in ("json", "text"):
            raise SettingsError("LOG_FORMAT", f"expected json or text, got {log_format!r}")
        log_level = (e.text("LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise SettingsError("LOG_LEVEL", f"unknown level {log_level!r}")
        port = e.number("HTTP_PORT", 8080)
        if port > 65535:
            raise SettingsError("HTTP_PORT", f"must be a TCP port, got {port}")
        return cls(
            **kafka,
            topic_replication_factor=e.number("TOPIC_REPLICATION_FACTOR", 1, minimum=1),
            work_partitions=e.number("WORK_PARTITIONS", 0),
            secrets_dir=secrets_dir,
            config_file=e.config_file("CONFIG_FILE"),
            destination_ca_file=e.readable_file("DESTINATION_CA_FILE"),
            log_level=log_level,
            log_format=log_format,
            http_port=port,
            shutdown_timeout_s=e.number("SHUTDOWN_TIMEOUT_S", 25.0, kind=float, minimum=1),
            max_event_bytes=e.number("MAX_EVENT_BYTES", 1_048_576, minimum=1),
            max_attempts=e.number("MAX_ATTEMPTS", 8, minimum=1),
            retry_deadline_s=e.number("RETRY_DEADLINE_S", 86_400.0, kind=float, minimum=1),
            retry_backoff_base_s=e.number("RETRY_BACKOFF_BASE_S", 60.0, kind=float),
            retry_backoff_max_s=e.number("RETRY_BACKOFF_MAX_S", 3600.0, kind=float),
            batch_linger_ms=e.number("BATCH_LINGER_MS", 50),
            lane_capacity=e.number("LANE_CAPACITY", 20_000, minimum=1),
            max_inflight=e.number("MAX_INFLIGHT", 20_000, minimum=1),
            max_inflight_bytes=e.number("MAX_INFLIGHT_BYTES", 128 * 1024 * 1024, minimum=1),
            commit_interval_ms=e.number("COMMIT_INTERVAL_MS", 1_000, minimum=10),
            destination_timeout_s=e.number("DESTINATION_TIMEOUT_S", 30.0, kind=float, minimum=1),
            state_dir=e.writable_dir("STATE_DIR", cls.state_dir),
            broker_unavailable_exit_s=e.number(
                "BROKER_UNAVAILABLE_EXIT_S", 300.0, kind=float, minimum=1
            ),
        )

    def kafka_auth(self) -> KafkaAuth:
        return KafkaAuth(
            self.security_protocol,
            self.sasl_mechanism,
            self.sasl_username,
            self.sasl_password,
            self.ssl_cafile,
            self.ssl_certfile,
            self.ssl_keyfile,
        )

    @classmethod
    def kafka_from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Only the Kafka connection and topic names, for tools such as
        `replay-dlq`: SECRETS_DIR, CONFIG_FILE, HTTP_PORT and the rest are not
        read (they keep their defaults), so a tool runs wherever Kafka is reachable."""
        return cls(**_kafka_fields(_Env(os.environ if env is None else env)))

    def kafka_client_args(self) -> dict[str, Any]:
        """Connection arguments shared by every aiokafka client (service/kafka_auth.py)."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": "trailspark-destinations",
            **self.kafka_auth().client_args(),
        }


def _kafka_auth(e: _Env, protocol: str, mechanism: str | None) -> KafkaAuth:
    """The TLS and SASL settings, checked: a client certificate needs its key and a
    TLS protocol, and the files must load (a bad one exits 2 at start)."""
    certfile, keyfile = e.readable_file("KAFKA_SSL_CERTFILE"), e.readable_file("KAFKA_SSL_KEYFILE")
    if (certfile is None) != (keyfile is None):
        missing = "KAFKA_SSL_KEYFILE" if keyfile is None else "KAFKA_SSL_CERTFILE"
        raise SettingsError(missing, "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
    if certfile is not None and protocol not in TLS_PROTOCOLS:
        raise SettingsError("KAFKA_SSL_CERTFILE", f"needs SSL or SASL_SSL, not {protocol}")
    password = e.text("KAFKA_SASL_PASSWORD")
    auth = KafkaAuth(
        protocol,
        mechanism,
        e.text("KAFKA_SASL_USERNAME"),
        SecretStr(password) if password is not None else None,
        e.readable_file("KAFKA_SSL_CAFILE"),
        certfile,
        keyfile,
    )
    if protocol in TLS_PROTOCOLS:
        try:
            auth.ssl_context()
        except (ssl.SSLError, OSError) as exc:
            name = "KAFKA_SSL_CERTFILE" if certfile is not None else "KAFKA_SSL_CAFILE"
            raise SettingsError(name, f"does not load: {type(exc).__name__}") from None
    return auth


def _kafka_fields(e: _Env) -> dict[str, Any]:
    """The KAFKA_* and TOPIC_* settings, checked as `from_env` checks them."""
    bootstrap = e.text("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap is None:
        raise SettingsError("KAFKA_BOOTSTRAP_SERVERS", "is required (host:port[,host:port])")
    protocol = e.choice("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", SECURITY_PROTOCOLS)
    mechanism = None
    if protocol.startswith("SASL_"):
        mechanism = e.choice("KAFKA_SASL_MECHANISM", "PLAIN", SASL_MECHANISMS)
        for name in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
            if e.text(name) is None:
                raise SettingsError(name, f"is required with {protocol}")
    auth = _kafka_auth(e, protocol, mechanism)
    d = Settings
    return {
        "bootstrap_servers": bootstrap,
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_username": auth.sasl_username,
        "sasl_password": auth.sasl_password,
        "ssl_cafile": auth.cafile,
        "ssl_certfile": auth.certfile,
        "ssl_keyfile": auth.keyfile,
        "consumer_group": e.text("KAFKA_CONSUMER_GROUP", d.consumer_group) or "",
        "group_instance_id": e.text("KAFKA_GROUP_INSTANCE_ID"),
        "session_timeout_ms": e.number("KAFKA_SESSION_TIMEOUT_MS", 10_000, minimum=1_000),
        "topic_evaluations": e.text("TOPIC_EVALUATIONS", d.topic_evaluations) or "",
        "topic_configs": e.text("TOPIC_CONFIGS", d.topic_configs) or "",
        "topic_status": e.text("TOPIC_STATUS", d.topic_status) or "",
        "topic_retry": e.text("TOPIC_RETRY", d.topic_retry) or "",
        "topic_dlq": e.text("TOPIC_DLQ", d.topic_dlq) or "",
        "topic_watermarks": e.text("TOPIC_WATERMARKS", d.topic_watermarks) or "",
        "topic_work": e.text("TOPIC_WORK", d.topic_work) or "",
    }
