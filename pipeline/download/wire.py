"""The HTTP transport of the download engine: httpx's own, reading the socket in wide steps.

httpcore asks its network stream for 64 KiB at a time, and anyio splits every larger
socket read into 64 KiB slices (a copy each). For a body of hundreds of megabytes
that per-read work (slicing, h11 events, epoll re-registration) costs more CPU than
hashing the bytes. The stream below asks for ``read_size`` bytes instead, so each read
takes whatever the socket already holds (up to the event loop's receive buffer), four
times fewer reads on a fast link. Everything else (TLS, pooling, timeouts, the
translation of errors to ``httpx`` exceptions) is httpx's and httpcore's, unchanged.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

# asyncio's socket transport receives at most 256 KiB per recv(); asking for more buys
# nothing, and a larger request would make TLS reads allocate larger buffers.
READ_SIZE = 256 * 1024


class _WideStream(httpcore.AsyncNetworkStream):
    """A network stream whose reads ask for at least ``read_size`` bytes."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, read_size: int):
        self._inner = inner
        self._read_size = read_size

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max(max_bytes, self._read_size), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _WideStream(tls, self._read_size)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _WideBackend(httpcore.AsyncNetworkBackend):
    """httpcore's asyncio (anyio) backend, handing out ``_WideStream`` connections."""

    def __init__(self, read_size: int):
        self._inner = httpcore.AnyIOBackend()
        self._read_size = read_size

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _WideStream(stream, self._read_size)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _WideStream(stream, self._read_size)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def wide_read_transport(
    limits: httpx.Limits, read_size: int = READ_SIZE
) -> httpx.AsyncHTTPTransport:
    """httpx's HTTP/1.1 transport (no proxies, system CA bundle) with wide socket reads.

    httpx offers no parameter for the network backend, so the connection pool it built
    is replaced by an equal one that has it. Should a later httpx lay out its transport
    differently, its own pool is kept: slower, never wrong.
    """
    # One TLS context for both pools: loading the CA bundle is the costliest part of setup.
    tls = httpx.create_ssl_context(trust_env=False)
    transport = httpx.AsyncHTTPTransport(verify=tls, limits=limits, trust_env=False)
    if isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_WideBackend(read_size),
        )
    return transport
