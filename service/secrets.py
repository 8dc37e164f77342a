"""Destination credentials from `$SECRETS_DIR/{credentials_ref}.json` (contract §4).

Files come from a mounted Kubernetes Secret and may be rotated at any time, so a
read re-checks the file's mtime and reloads it when it changed. A Secret volume
is made of symlinks (`ref.json -> ..data/ref.json`), so symlinks are followed,
but a file whose real path is outside SECRETS_DIR is refused.

Every refusal raises CredentialsUnavailable (status `failed`, never echoing a
value) and is counted in `credentials_unavailable_total{reason}`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from service.credentials import (
    SECRET_KEYS,
    CredentialsFile,
    check_owner,
    parse_file,
    ref_problem,
    reveal,
)
from service.destinations.idle import IdleMap
from service.errors import CredentialsUnavailable
from service.metrics import Metrics
from service.models import DestinationConfig
from service.redact import register_secret

CACHE_IDLE_S = 3600.0
CACHE_MAX_ENTRIES = 10_000


class SecretStore:
    def __init__(self, directory: Path, metrics: Metrics | None = None) -> None:
        self.directory = directory
        self.metrics = metrics
        # Bounded: a file unused for an hour (an org that left) is read again if needed.
        self._cache: IdleMap[str, tuple[int, CredentialsFile]] = IdleMap(
            idle_s=CACHE_IDLE_S, max_entries=CACHE_MAX_ENTRIES
        )

    def load(self, config: DestinationConfig) -> Mapping[str, Any]:
        """The credentials `config` may use, secrets as SecretStr. The one gate to a
        credentials file: ref rule, containment and `org_id` owner check."""
        ref = config.integration.credentials_ref
        problem = ref_problem(ref, config.org_id, config.destination)
        if problem is not None:  # validation rejects such configs; this is the backstop
            raise self._refused("invalid_ref", problem)
        credentials = self._read(ref)
        try:
            check_owner(credentials, config.org_id, ref)
        except CredentialsUnavailable as exc:
            raise self._refused("other_org", exc.message) from None
        return credentials.as_mapping()

    def _read(self, ref: str) -> CredentialsFile:
        path = self.directory / f"{ref}.json"
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(self.directory.resolve(strict=True)):
                raise self._refused("outside_secrets_dir", f"secret {ref!r} leaves SECRETS_DIR")
            stamp = os.stat(real).st_mtime_ns
            cached = self._cache.get(ref)
            if cached and cached[0] == stamp:
                return cached[1]
            data = orjson.loads(real.read_bytes())
        except FileNotFoundError:
            raise self._refused("not_mounted", f"secret {ref!r} is not mounted") from None
        except (OSError, RuntimeError, orjson.JSONDecodeError) as exc:  # RuntimeError: loop
            message = f"secret {ref!r} is unreadable: {type(exc).__name__}"
            raise self._refused("unreadable", message) from None
        try:
            credentials = parse_file(data, ref)
        except CredentialsUnavailable as exc:
            raise self._refused("invalid_file", exc.message) from None
        for key in SECRET_KEYS:  # also masked wherever a remote answer echoes one
            value = reveal(getattr(credentials, key))
            if value is not None:
                register_secret(value, owner=f"file:{ref}:{key}")  # replaces the file's old value
        self._cache.put(ref, (stamp, credentials))
        return credentials

    def _refused(self, reason: str, message: str) -> CredentialsUnavailable:
        if self.metrics is not None:
            self.metrics.credentials_unavailable.labels(reason).inc()
        return CredentialsUnavailable(message)
