"""The HTTP transport of the download engine: httpx's own, over a leaner network stream.

httpcore reads its network stream through anyio, which for every read with
nothing queued resumes the socket's reader, waits, and pauses it again: two
``epoll_ctl`` calls and a stack of wrappers per read, and asyncio hands over at
most 256 KiB per read. For a body of hundreds of megabytes that per-read work
costs more CPU than hashing the bytes. The stream below is an asyncio protocol
that keeps reading while fewer than ``RECEIVE_LIMIT`` bytes wait unread and
pauses only beyond that, so a steady download costs one ``recv`` and one wake-up
per read and nothing else; memory per connection stays near that limit.

Everything else (HTTP/1.1 parsing, pooling, TLS through ``loop.start_tls``,
timeouts raised as httpcore's, translated by httpx to ``httpx`` exceptions) is
httpx's and httpcore's, unchanged. Should a later httpx lay out its transport
differently, its own pool is kept: slower, never wrong.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any, cast

import httpcore
import httpx

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

#: Bytes a connection may hold unread before it stops reading from the socket.
RECEIVE_LIMIT = 1024 * 1024


class _Receiver(asyncio.Protocol):
    """A connection's received bytes, queued; reading pauses only past ``limit`` unread."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._paused = False
        self._closed = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio's.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._queued += len(data)
        if self._queued >= self._limit and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self._closed = True
        self._wake()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def readable(self) -> bool:
        """Whether a read would return at once (data queued, or the peer closed)."""
        return bool(self._chunks) or self._closed

    async def receive(self, max_bytes: int, timeout: float | None) -> bytes:
        """The next queued bytes (at most ``max_bytes``); ``b""`` once the peer closed."""
        while not self._chunks:
            if self._closed:
                if self._error is not None:
                    raise httpcore.ReadError(str(self._error) or type(self._error).__name__)
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no data within {timeout} s") from None
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            self._chunks.appendleft(rest)
        self._queued -= len(chunk)
        if self._paused and self._queued < self._limit // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk


class _LeanStream(httpcore.AsyncNetworkStream):
    """One connection as httpcore sees it, over a ``_Receiver``.

    ``raw`` is the TCP transport under ``transport`` (the same one without TLS):
    the stream closes it itself, see ``aclose``.
    """

    def __init__(
        self, transport: asyncio.Transport, protocol: _Receiver, raw: asyncio.Transport
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._raw = raw

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        # Whatever the socket brought, up to asyncio's 256 KiB per recv, not httpcore's 64.
        return await self._protocol.receive(max(max_bytes, RECEIVE_LIMIT), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        # Requests are a few hundred bytes: the transport buffers them whole.
        self._transport.write(buffer)

    async def aclose(self) -> None:
        # Closing a TLS transport only starts the TLS close: its socket stays open until
        # the peer answers it (or 30 s pass), and if the event loop ends first it is never
        # closed. So the TLS close is sent and the socket closed at once, as anyio does;
        # the bodies are framed by their length and checked, so nothing rides on the
        # peer's answer.
        self._transport.close()
        self._raw.close()
        try:
            await asyncio.sleep(0)  # the transport closes its socket on the loop's next turn
        finally:
            self._raw.abort()  # nothing left unsent holds it open

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except BaseException as exc:
            # httpcore drops the plain stream when TLS fails (or is cancelled): its
            # socket is closed here or by nobody.
            self._raw.abort()
            if isinstance(exc, TimeoutError):
                raise httpcore.ConnectTimeout(
                    f"TLS handshake not done within {timeout} s"
                ) from None
            if isinstance(exc, OSError | ssl.SSLError):
                raise httpcore.ConnectError(str(exc)) from exc
            raise
        self._protocol.transport = cast(asyncio.Transport, transport)
        return _LeanStream(self._protocol.transport, self._protocol, self._raw)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._protocol.readable()
        names = {"client_addr": "sockname", "server_addr": "peername"}
        return self._transport.get_extra_info(names.get(info, info))


class _LeanBackend(httpcore.AsyncNetworkBackend):
    """TCP connections as ``_LeanStream``; Unix sockets and sleeping as anyio does them."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._anyio = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Receiver(self._limit)
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"not connected within {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        try:
            sock = transport.get_extra_info("socket")
            for option in socket_options or ():
                sock.setsockopt(*option)
        except OSError as exc:
            transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        return _LeanStream(transport, protocol, transport)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._anyio.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def wide_read_transport(
    limits: httpx.Limits,
    receive_limit: int = RECEIVE_LIMIT,
    *,
    tls: ssl.SSLContext | None = None,
) -> httpx.AsyncHTTPTransport:
    """httpx's HTTP/1.1 transport (no proxies) over ``_LeanStream``.

    ``tls`` defaults to the system CA bundle. httpx offers no parameter for the
    network backend, so the connection pool it built is replaced by an equal one
    that has it.
    """
    # One TLS context for both pools: loading the CA bundle is the costliest part of setup.
    tls = tls or httpx.create_ssl_context(trust_env=False)
    transport = httpx.AsyncHTTPTransport(verify=tls, limits=limits, trust_env=False)
    if isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_LeanBackend(receive_limit),
        )
    return transport
