"""Config rules of contract §4, on the pure store (the broker tests cover the topic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from devkit.factories import make_config
from service.config.store import ConfigStore
from service.errors import SettingsError
from service.metrics import Metrics
from service.settings import Settings


def apply(store: ConfigStore, config: dict[str, Any] | None, key: str = "org_1:salesforce") -> None:
    store.apply_record(key.encode(), orjson.dumps(config) if config is not None else None)


def rejected(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "trailspark_destinations_configs_rejected_total", {"reason": reason}
    )
    return value or 0.0


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def store(metrics: Metrics) -> ConfigStore:
    return ConfigStore(metrics)


def test_newer_version_replaces_and_older_is_ignored_not_rejected(
    store: ConfigStore, metrics: Metrics
) -> None:
    apply(store, make_config(version=2))
    apply(store, make_config(version=3, send_evaluations=False))
    apply(store, make_config(version=3))
    apply(store, make_config(version=1))
    held = store.get("org_1", "salesforce")
    assert held is not None and held.version == 3 and held.send_evaluations is False
    assert store.active("org_1") == []
    ignored = metrics.registry.get_sample_value(
        "trailspark_destinations_configs_ignored_total", {"reason": "stale_version"}
    )
    assert ignored == 2
    assert rejected(metrics, "stale_version") == 0


def test_tombstone_deletes(store: ConfigStore) -> None:
    apply(store, make_config())
    assert [c.destination for c in store.active("org_1")] == ["salesforce"]
    apply(store, None)
    assert store.get("org_1", "salesforce") is None and store.active("org_1") == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"updated_by": {"user_id": "u", "role": "viewer"}}, "unauthorized_role"),
        ({"destination": "pipedrive"}, "unknown_destination"),
        ({"targets": [{"object": "Opportunity", "fields": {"score": "S"}}]}, "unknown_object"),
        ({"targets": [{"object": "Lead", "fields": {}}]}, "empty_fields"),
        (
            {
                "targets": [
                    {
                        "object": "Lead",
                        "fields": {"score": "S"},
                        "match": {"crm_field": "Email", "event_field": "evaluation.score"},
                    }
                ]
            },
            "invalid_match_field",
        ),
        (
            {
                "integration": {
                    "id": "i",
                    "status": "connected",
                    "credentials_ref": "org_2-salesforce",
                }
            },
            "invalid_credentials_ref",
        ),
        (
            {
                "integration": {
                    "id": "i",
                    "status": "connected",
                    "credentials_ref": "org_1-../../etc",
                }
            },
            "invalid_credentials_ref",
        ),
        ({"schema_version": 2}, "unsupported_schema_version"),
        ({"version": "seven"}, "invalid_schema"),
        ({"org_id": "org_9"}, "key_mismatch"),
    ],
)
def test_invalid_config_is_rejected_and_previous_stays(
    store: ConfigStore, metrics: Metrics, change: dict[str, Any], reason: str
) -> None:
    apply(store, make_config(version=1))
    apply(store, {**make_config(version=2), **change})
    held = store.get("org_1", "salesforce")
    assert held is not None and held.version == 1
    assert rejected(metrics, reason) == 1


def test_propensity_on_airtable_is_rejected(store: ConfigStore, metrics: Metrics) -> None:
    propensity = {
        "enabled": True,
        "object": "Companies",
        "field": "P",
        "match": {"crm_field": "Domain", "event_field": "lead.domain"},
    }
    apply(store, make_config("airtable", propensity=propensity), key="org_1:airtable")
    assert store.get("org_1", "airtable") is None
    assert rejected(metrics, "propensity_not_supported") == 1


def test_invalid_json_config_is_rejected(store: ConfigStore, metrics: Metrics) -> None:
    store.apply_record(b"org_1:salesforce", b"{not json")
    assert rejected(metrics, "invalid_json") == 1


def load(path: Path, store: ConfigStore) -> int:
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "x:1",
            "SECRETS_DIR": str(path.parent),
            "CONFIG_FILE": str(path),
        }
    )
    for entry in settings.config_entries:
        store.apply_object(entry)
    return len(settings.config_entries)


def test_config_file_json_and_yaml(tmp_path: Path, store: ConfigStore, metrics: Metrics) -> None:
    as_json = tmp_path / "c.json"
    as_json.write_bytes(orjson.dumps([make_config("salesforce"), make_config("hubspot")]))
    assert load(as_json, store) == 2
    guest = make_config("hubspot", version=5, updated_by={"user_id": "u", "role": "guest"})
    as_yaml = tmp_path / "c.yaml"
    as_yaml.write_text(
        "- " + orjson.dumps(make_config("airtable")).decode() + "\n"
        "- " + orjson.dumps(guest).decode() + "\n"
    )
    assert load(as_yaml, store) == 2
    assert sorted(c.destination for c in store.active("org_1")) == [
        "airtable",
        "hubspot",
        "salesforce",
    ]
    assert rejected(metrics, "unauthorized_role") == 1


def test_unparseable_config_file_is_a_settings_error(tmp_path: Path, store: ConfigStore) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- [unclosed")
    with pytest.raises(SettingsError, match="CONFIG_FILE"):
        load(bad, store)
