"""One local certificate authority (trustme) for every HTTPS sandbox.

`sandbox_tls(directory)` returns the server SSL context for 127.0.0.1/localhost and
writes the CA bundle to `directory/sandbox-ca.pem`, the file the service gets as
`DESTINATION_CA_FILE`.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path

import trustme


@lru_cache(maxsize=1)
def _ca() -> trustme.CA:
    return trustme.CA()


def sandbox_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    ca = _ca()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = directory / "sandbox-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file
