"""simple-salesforce built from the secret file, trusting `DESTINATION_CA_FILE`.

The SDK is synchronous (requests), so the service never uses it: the hot path is
`service.destinations.salesforce.client.RestClient` (aiohttp) on the same REST
paths, which bench/salesforce_client.py shows is faster. This builder serves that
benchmark, the SDK compatibility test and ad-hoc scripts (via asyncio.to_thread).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce

from service.destinations.http import ssl_context
from service.destinations.salesforce.client import Credentials
from service.errors import CredentialsUnavailable


class _TrustAdapter(HTTPAdapter):
    """requests with an SSLContext: system CAs plus the extra bundle, not instead of them."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if verify is not False:
            pool["ssl_context"] = self._context
        return host, pool


def sdk_session(ca_file: Path | None) -> requests.Session:
    session = requests.Session()
    session.mount("https://", _TrustAdapter(ssl_context(ca_file)))
    return session


def sdk_client(credentials: Mapping[str, Any], ca_file: Path | None) -> Salesforce:
    """A direct-session client (no login): instance_url, access_token, api_version."""
    creds = Credentials.parse(credentials)
    if creds.access_token is None:
        raise CredentialsUnavailable("the SDK builder needs an access_token in the secret")
    return Salesforce(
        instance_url=creds.instance_url,
        session_id=creds.access_token,
        version=creds.api_version,
        session=sdk_session(ca_file),
    )
