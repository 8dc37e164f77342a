"""The aiokafka connection arguments for each `KAFKA_SECURITY_PROTOCOL` (contract §7).

Pure: settings in, keyword arguments out, shared by every client (consumer,
producers, admin). TLS verifies the brokers against the system CAs plus
`KAFKA_SSL_CAFILE`; a client certificate (`KAFKA_SSL_CERTFILE` and
`KAFKA_SSL_KEYFILE`) makes it mutual TLS. SASL adds PLAIN or SCRAM on top.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

TLS_PROTOCOLS = ("SSL", "SASL_SSL")


@dataclass(frozen=True)
class KafkaAuth:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = field(default=None, repr=False)
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """Server verification always on (host name included); raises ssl.SSLError or
        OSError when a file does not load, so a bad setting stops the start."""
        context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
        if self.certfile is not None:
            keyfile = str(self.keyfile) if self.keyfile else None
            context.load_cert_chain(certfile=str(self.certfile), keyfile=keyfile)
        return context

    def client_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in TLS_PROTOCOLS:
            args["ssl_context"] = self.ssl_context()
        if self.protocol.startswith("SASL_"):
            args["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            args["sasl_plain_username"] = self.sasl_username
            password = self.sasl_password
            args["sasl_plain_password"] = password.get_secret_value() if password else None
        return args
