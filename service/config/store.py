"""The org's destination configs, materialised from the compacted config topic (§4).

Rules: a version not newer than the held one is ignored (counted apart); a
tombstone deletes; an invalid config is rejected, logged and counted while the
previous one stays in force. Nothing here raises to the caller.
"""

from __future__ import annotations

import logging

from service.config.compact import Compactor
from service.config.validation import parse, parse_obj, validate
from service.errors import ConfigRejected
from service.metrics import Metrics
from service.models import DestinationConfig

log = logging.getLogger(__name__)


class ConfigStore:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._by_key: dict[str, DestinationConfig] = {}
        self._by_org: dict[str, dict[str, DestinationConfig]] = {}
        self._compactor = Compactor(self._by_key.values)  # configs share equal parts

    def get(self, org_id: str, destination: str) -> DestinationConfig | None:
        return self._by_org.get(org_id, {}).get(destination)

    def active(self, org_id: str) -> list[DestinationConfig]:
        """Configs whose destination is active (send_evaluations) for the org."""
        return [c for c in self._by_org.get(org_id, {}).values() if c.send_evaluations]

    def configs(self) -> list[DestinationConfig]:
        """Every config in force (active or not), for the status endpoint."""
        return list(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        """One record from the config topic."""
        key_text = key.decode("utf-8", "replace") if key is not None else None
        if value is None:
            if key_text is not None:
                self._delete(key_text)
            return
        try:
            config = parse(value, key_text)
        except ConfigRejected as exc:
            self._reject(key_text, exc)
            return
        self.put(config)

    def apply_object(self, data: object) -> None:
        """A parsed config (from CONFIG_FILE): validated the same way."""
        try:
            config = validate(parse_obj(data))
        except ConfigRejected as exc:
            key = (
                f"{data.get('org_id')}:{data.get('destination')}"
                if isinstance(data, dict)
                else None
            )
            self._reject(key, exc)
            return
        self.put(config)

    def put(self, config: DestinationConfig) -> None:
        held = self._by_key.get(config.key)
        if held is not None and config.version <= held.version:
            self.metrics.configs_ignored.labels("stale_version").inc()
            log.info(
                "config %s version %d ignored: version %d is held",
                config.key,
                config.version,
                held.version,
            )
            return
        config = self._compactor.compact(config)
        self._by_key[config.key] = config
        self._by_org.setdefault(config.org_id, {})[config.destination] = config
        self.metrics.configs_active.set(len(self._by_key))
        log.info(
            "config %s version %d in force (send_evaluations=%s, integration=%s)",
            config.key,
            config.version,
            config.send_evaluations,
            config.integration.status,
        )

    def _delete(self, key: str) -> None:
        config = self._by_key.pop(key, None)
        if config is not None:
            self._by_org.get(config.org_id, {}).pop(config.destination, None)
            self.metrics.configs_active.set(len(self._by_key))
            log.info("config %s deleted by tombstone", key)

    def _reject(self, key: str | None, exc: ConfigRejected) -> None:
        self.metrics.configs_rejected.labels(exc.reason).inc()
        log.warning(
            "config %s rejected (%s): %s; previous config stays", key, exc.reason, exc.message
        )
