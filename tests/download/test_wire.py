"""The download engine's network stream: whole bodies over plain HTTP and TLS, reading paused and resumed.

A real origin on loopback (wrapped in TLS with a certificate made for the
test) serves bodies larger than the stream's receive limit to a reader slower
than the network, so the stream has to stop reading from the socket and start
again many times; every byte must still arrive once, in order. A second TLS
origin never answers the client's close, and the client's sockets must be
closed all the same once the client is.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import hashlib
import ipaddress
import socket
import ssl
import threading
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipeline.download.wire import wide_read_transport
from tests.fixtures.origin import Origin

BODY = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def _fetch_slowly(url: str, tls: ssl.SSLContext | None) -> bytes:
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    transport = wide_read_transport(limits, receive_limit=64 * 1024, tls=tls)
    async with httpx.AsyncClient(transport=transport) as client:
        received = bytearray()
        for _ in range(2):  # the second request reuses the kept-alive connection
            received.clear()
            async with client.stream("GET", url) as response:
                assert response.status_code == 200
                async for piece in response.aiter_raw():
                    received += piece
                    await asyncio.sleep(0.001)  # slower than loopback: the queue fills
        return bytes(received)


def _run(coroutine: Any, loop: str) -> Any:
    if loop == "uvloop":  # what serve runs on when uvicorn[standard] is installed
        uvloop = pytest.importorskip("uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    return asyncio.run(coroutine)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_body_larger_than_the_receive_limit_arrives_whole(
    scheme: str, loop: str, tmp_path: Path
) -> None:
    origin = Origin()
    tls = None
    if scheme == "https":
        cert, key = _certificate(tmp_path)
        server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_side.load_cert_chain(cert, key)
        origin._server.socket = server_side.wrap_socket(origin._server.socket, server_side=True)
        tls = ssl.create_default_context(cafile=str(cert))
    origin.add("body.bin", BODY)
    origin.start()
    try:
        url = f"{scheme}://127.0.0.1:{origin.port}/body.bin"
        assert _run(_fetch_slowly(url, tls), loop) == BODY
    finally:
        origin.stop()
    assert origin.hits("body.bin") == 2  # one connection, kept alive


def test_a_server_that_stops_sending_is_a_read_timeout() -> None:
    origin = Origin()
    origin.add("slow.bin", BODY, first_byte=2.0)
    origin.start()

    async def fetch() -> None:
        transport = wide_read_transport(httpx.Limits(max_connections=1))
        # Only the read is short: a connect on a busy machine may take longer than that.
        timeout = httpx.Timeout(5, read=0.3)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            await client.get(origin.url_for("slow.bin"))

    try:
        with pytest.raises(httpx.ReadTimeout):
            asyncio.run(fetch())
    finally:
        origin.stop()


class _SilentTlsOrigin:
    """A TLS origin that answers one request with ``sent`` bytes of ``BODY``, then holds on.

    It never closes the connection nor answers the client's TLS close (as a busy
    or careless peer may), so only the client can close its socket.
    """

    def __init__(self, directory: Path, sent: int) -> None:
        cert, key = _certificate(directory)
        self.tls = ssl.create_default_context(cafile=str(cert))
        self._server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_side.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}/body.bin"
        self._sent = sent
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def _serve(self) -> None:
        raw, _ = self._listener.accept()
        with self._server_side.wrap_socket(raw, server_side=True) as conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY))
            conn.sendall(BODY[: self._sent])
            self._done.wait(30)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=35)
        self._listener.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("sent", [len(BODY), 1000], ids=["whole-body", "abandoned-body"])
def test_a_closed_client_leaves_no_socket_open_when_the_origin_never_answers_the_close(
    sent: int, loop: str, tmp_path: Path
) -> None:
    origin = _SilentTlsOrigin(tmp_path, sent)

    async def fetch() -> None:
        transport = wide_read_transport(httpx.Limits(max_connections=1), tls=origin.tls)
        async with (
            httpx.AsyncClient(transport=transport, timeout=5) as client,
            client.stream("GET", origin.url) as response,
        ):
            # A whole body leaves the connection pooled; a partly read one (as when
            # a check fails mid-download) is closed with the response.
            async for _ in response.aiter_raw():
                if sent < len(BODY):
                    break

    # No collection midway: a socket left open must still be open when it is looked for.
    gc.disable()
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            _run(fetch(), loop)
            gc.collect()
    finally:
        gc.enable()
        origin.stop()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
