"""Running the receiver under uvicorn: in the foreground (``serve``) or in a thread (demo, tests).

uvicorn runs on uvloop with the httptools parser when they are installed
(``uvicorn[standard]``), else on asyncio with h11. Neither protocol bounds
the time a client takes to send a request's line and headers, so a client
sending a header byte a second (slowloris) would hold a connection forever.
The protocols used here close a connection whose request head is not
complete within ``serve.header_timeout`` seconds of its first byte (or of
the connection, for the first request), whichever parser reads it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import ServeSection

log = logging.getLogger(__name__)

#: Seconds uvicorn waits for open requests when asked to stop.
GRACEFUL_SHUTDOWN = 5
#: Seconds a client may take to send a request's line and headers (``serve.header_timeout``).
DEFAULT_HEADER_TIMEOUT: float = ServeSection.model_fields["header_timeout"].default

#: Which HTTP parser reads requests: ``auto`` is httptools when installed, else h11.
HttpParser = Literal["auto", "h11", "httptools"]


class HeadDeadline:
    """One connection's deadline for a complete request head.

    Armed when the connection opens, and when a chunk leaves a new request's
    head incomplete (the first byte of a further request on a kept-alive
    connection; between requests uvicorn's own keep-alive timeout applies).
    A head that arrives whole in one chunk, the usual case, never starts a
    timer, so the deadline costs nothing per request.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport,
        seconds: float,
        client: tuple[str, int] | None,
    ) -> None:
        self._loop = loop
        self._transport = transport
        self._seconds = seconds
        self._client = client
        self._timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        """Start counting, unless already counting."""
        if self._timer is None:
            self._timer = self._loop.call_later(self._seconds, self._expired)

    def disarm(self) -> None:
        """Stop counting: the head is complete (or the connection gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def after_chunk(self, awaiting_head: bool) -> None:
        """A chunk was parsed; ``awaiting_head`` tells whether a request head is still wanted."""
        if awaiting_head and not self._transport.is_closing():
            self.arm()
        else:
            self.disarm()

    def _expired(self) -> None:
        self._timer = None
        if not self._transport.is_closing():
            log.warning(
                "closed the connection from %s: no complete request head within %s s",
                self._client[0] if self._client else "?",
                self._seconds,
            )
            self._transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is part of uvicorn[standard]; h11 serves without it
    HttpToolsProtocol = None  # type: ignore[assignment,misc]  # the name tells the parser is missing


def _with_head_deadline(
    base: type[H11Protocol] | type[HttpToolsProtocol], header_timeout: float
) -> type[asyncio.Protocol]:
    """uvicorn's protocol ``base`` with a :class:`HeadDeadline` on each request's head.

    Both of uvicorn's protocols keep the request being answered in ``cycle``
    (``None`` before the first one), so one test serves both parsers: a head is
    wanted while there is no cycle or its response is complete.
    """

    def connection_made(self: Any, transport: asyncio.Transport) -> None:
        base.connection_made(self, transport)
        self._deadline = HeadDeadline(self.loop, transport, header_timeout, self.client)
        self._deadline.arm()

    def data_received(self: Any, data: bytes) -> None:
        base.data_received(self, data)
        if self._deadline is not None:
            self._deadline.after_chunk(self.cycle is None or self.cycle.response_complete)

    def connection_lost(self: Any, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.disarm()
        base.connection_lost(self, exc)

    methods = {
        "_deadline": None,
        "connection_made": connection_made,
        "data_received": data_received,
        "connection_lost": connection_lost,
    }
    return type(f"HeadDeadline{base.__name__}", (base,), methods)


def _protocol(parser: HttpParser, header_timeout: float) -> type[asyncio.Protocol]:
    """The protocol class for ``parser`` with ``header_timeout`` set."""
    if parser == "h11" or (parser == "auto" and HttpToolsProtocol is None):
        return _with_head_deadline(H11Protocol, header_timeout)
    if HttpToolsProtocol is None:
        raise RuntimeError("the httptools parser is not installed (pip install 'uvicorn[standard]')")
    return _with_head_deadline(HttpToolsProtocol, header_timeout)


def uvicorn_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    lifespan: Literal["on", "off"] = "on",
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    parser: HttpParser = "auto",
) -> uvicorn.Config:
    """uvicorn settings for the receiver: lifespan on (it runs the workers), a header deadline.

    uvicorn runs on uvloop when it is installed (``uvicorn[standard]``).
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_protocol(parser, header_timeout),
        lifespan=lifespan,
        log_level="warning",
        # At log level "warning" uvicorn's access lines (INFO) never print; formatting
        # them for nothing cost every request.
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        # Deliveries are small; a client that sends headers slowly is not worth waiting for.
        timeout_keep_alive=5,
        # No websocket routes: do not load a websocket implementation at all.
        ws="none",
        # Nothing here reads the client's address or scheme, so X-Forwarded-* headers
        # need not be parsed on every request.
        proxy_headers=False,
    )


def serve_forever(
    app: ASGIApp, *, host: str, port: int, header_timeout: float = DEFAULT_HEADER_TIMEOUT
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM stop it gracefully)."""
    server = uvicorn.Server(
        uvicorn_config(app, host=host, port=port, header_timeout=header_timeout)
    )
    server.run()
    if not server.started:
        raise OSError(f"could not serve on {host}:{port}")


class ServerThread:
    """Run an ASGI app under uvicorn in a thread on loopback; ``with`` starts and stops it.

    ``port`` 0 picks a free port; a busy port falls back to a free one when
    ``fallback`` is set. ``lifespan`` is "on" for the receiver (it runs the workers).
    ``parser`` picks the HTTP parser (``auto``: httptools when installed).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fallback: bool = False,
        lifespan: Literal["on", "off"] = "on",
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        parser: HttpParser = "auto",
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            if not fallback:
                self._sock.close()
                raise
            self._sock.bind((host, 0))
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = uvicorn.Server(
            uvicorn_config(
                app,
                host=host,
                port=self.port,
                lifespan=lifespan,
                header_timeout=header_timeout,
                parser=parser,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:43121``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        """Start serving and wait until the lifespan finished and it accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (workers are stopped by the lifespan) and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=GRACEFUL_SHUTDOWN + 10)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
