"""hubspot-api-client, built from the secret file (the service never uses it).

The SDK is synchronous (urllib3): call it only through `asyncio.to_thread`.
`bench/hubspot_client.py` compares it with the aiohttp path the destination
uses, on the same REST paths. urllib3 trusts exactly the `ssl_ca_cert` bundle it
is given, so `DESTINATION_CA_FILE` is combined with the public roots (certifi).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import certifi
from hubspot import Client

from service.destinations.hubspot.client import Credentials
from service.errors import CredentialsUnavailable


def ca_bundle(extra_ca_file: Path | None, directory: Path) -> Path:
    """certifi's roots plus the extra CAs, as one PEM file for urllib3."""
    if extra_ca_file is None:
        return Path(certifi.where())
    bundle = directory / "hubspot-sdk-ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + extra_ca_file.read_bytes())
    return bundle


def sdk_client(
    credentials: Mapping[str, Any], extra_ca_file: Path | None, directory: Path, **config: Any
) -> Any:
    """`Client.create(access_token=..., host=base_url)`, trusting DESTINATION_CA_FILE.
    `config` goes to the SDK's Configuration (e.g. connection_pool_maxsize)."""
    creds = Credentials.parse(credentials)
    if creds.access_token is None:  # the SDK takes a static token, never a grant
        raise CredentialsUnavailable("HubSpot secret has no access_token")
    token, base_url = creds.access_token, creds.base_url
    bundle = ca_bundle(extra_ca_file, directory)
    return Client.create(access_token=token, host=base_url, ssl_ca_cert=str(bundle), **config)


def close_apis(*apis: Any) -> None:
    """Drop the pooled connections of SDK api objects (each `..._api` access builds
    a new ApiClient with its own urllib3 pool)."""
    for api in apis:
        api.api_client.close()
        api.api_client.rest_client.pool_manager.clear()
