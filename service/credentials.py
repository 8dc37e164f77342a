"""Which credentials an org may use, and how their values are held. Pure: no I/O.

Tenant isolation rests on two checks, both here so that every reader of a
credentials file (the delivery path, and OAuth refresh) goes through them:

* `ref_problem`: a config's `credentials_ref` must be exactly
  `{org_id}-{destination}`. The destination ids are fixed words, none of them a
  suffix of another, so a ref names one (org, destination) pair and no other:
  org `acme` cannot reach `acme-eu-salesforce` (org `acme-eu`). A free suffix
  (`{org_id}-{destination}-...`) would not be: `acme-salesforce-salesforce` is
  then both org `acme`'s and org `acme-salesforce`'s.
* `check_owner`: a file that holds `org_id` is never used for another org.

Secret values are pydantic `SecretStr`: their repr and str are `**********`, so a
log line, an exception or a status built from them cannot carry the token.
`reveal` unwraps one at the moment a request header is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from service.errors import CredentialsUnavailable

_FILE_NAME = re.compile(r"[A-Za-z0-9_-]+")  # no '/', no '.', no NUL: never a path
# Keys whose values are secrets. Issue 14's OAuth fields are here already, so a
# refresher reading a file gets them as SecretStr too.
SECRET_KEYS = ("access_token", "api_key", "refresh_token", "client_secret", "password")


def expected_ref(org_id: str, destination: str) -> str:
    return f"{org_id}-{destination}"


def ref_problem(ref: str, org_id: str, destination: str) -> str | None:
    """Why `ref` may not be used by (org_id, destination); None when it may."""
    if not _FILE_NAME.fullmatch(ref):
        return "credentials_ref must be a plain name (letters, digits, '_' and '-'), not a path"
    if ref != expected_ref(org_id, destination):
        return f"credentials_ref must be '{expected_ref(org_id, destination)}'"
    return None


class CredentialsFile(BaseModel):
    """One `$SECRETS_DIR/{ref}.json`. Unknown keys are kept (each destination reads
    its own, e.g. instance_url, base_id); every key in SECRET_KEYS is a SecretStr."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)

    org_id: str | None = None
    access_token: SecretStr | None = None
    api_key: SecretStr | None = None
    refresh_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    password: SecretStr | None = None

    def as_mapping(self) -> Mapping[str, Any]:
        """What a destination's `Batch.credentials` holds: secrets still wrapped."""
        return {k: v for k, v in self if v is not None}  # extras included


def parse_file(data: object, ref: str) -> CredentialsFile:
    if not isinstance(data, dict):
        raise CredentialsUnavailable(f"secret {ref!r} is not a JSON object")
    try:
        return CredentialsFile.model_validate(data)
    except ValidationError as exc:  # hide_input_in_errors: the text holds no value
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise CredentialsUnavailable(f"secret {ref!r} has a bad field {where!r}") from None


def check_owner(credentials: CredentialsFile, org_id: str, ref: str) -> None:
    """A file that names its org is never used for another one (contract §4)."""
    owner = credentials.org_id
    if owner is not None and owner != org_id:
        raise CredentialsUnavailable(f"secret {ref!r} belongs to another org")


def reveal(value: object) -> str | None:
    """The plain text of a SecretStr (or of a str, as tests pass); None otherwise."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value if isinstance(value, str) and value else None
