"""Destination credentials from `$SECRETS_DIR/{credentials_ref}.json` (contract §4).

Files come from a mounted Kubernetes Secret and may be rotated at any time, so a
read re-checks the file's mtime and reloads it when it changed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson

from service.errors import CredentialsUnavailable
from service.redact import register_secret

_REF = re.compile(r"^[A-Za-z0-9_-]+-[a-z0-9-]+$")
SECRET_KEYS = ("access_token", "api_key", "refresh_token", "client_secret", "password")


class SecretStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, tuple[int, dict[str, Any]]] = {}

    def load(self, ref: str) -> dict[str, Any]:
        """The parsed secret; raises CredentialsUnavailable (never echoing contents)."""
        if not _REF.match(ref):
            raise CredentialsUnavailable(f"credentials_ref {ref!r} is not a valid name")
        path = self.directory / f"{ref}.json"
        try:
            stamp = os.stat(path).st_mtime_ns
            cached = self._cache.get(ref)
            if cached and cached[0] == stamp:
                return cached[1]
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise CredentialsUnavailable(f"secret {ref!r} is not mounted") from None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CredentialsUnavailable(
                f"secret {ref!r} is unreadable: {type(exc).__name__}"
            ) from None
        if not isinstance(data, dict):
            raise CredentialsUnavailable(f"secret {ref!r} is not a JSON object")
        for key in SECRET_KEYS:
            if isinstance(data.get(key), str):
                register_secret(data[key])
        self._cache[ref] = (stamp, data)
        return data
