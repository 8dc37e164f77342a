"""`CONFIG_FILE`: a JSON or YAML list of DestinationConfig, for local runs (§7)."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml

from service.config.store import ConfigStore
from service.errors import SettingsError


def load_config_file(path: Path, store: ConfigStore) -> int:
    """Apply every config in the file; returns how many were read.

    An unreadable file is a bad setting (exit 2); an invalid entry is only rejected.
    """
    try:
        text = path.read_bytes()
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise SettingsError("CONFIG_FILE", f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(data, list):
        raise SettingsError("CONFIG_FILE", f"{str(path)!r} must hold a list of configs")
    for item in data:
        store.apply_object(item)  # an invalid entry is rejected like a topic record
    return len(data)
