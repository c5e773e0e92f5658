"""Running the receiver under uvicorn: in the foreground (``serve``) or in a thread (demo, tests).

uvicorn's h11 protocol waits for a request's line and headers as long as the
client keeps the connection open, so a client sending a header byte a second
(slowloris) would hold a connection forever. The protocol used here closes a
connection whose request head is not complete within ``serve.header_timeout``
seconds of its first byte (or of the connection, for the first request).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Literal

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config import ServeSection

log = logging.getLogger(__name__)

#: Seconds uvicorn waits for open requests when asked to stop.
GRACEFUL_SHUTDOWN = 5
#: Seconds a client may take to send a request's line and headers (``serve.header_timeout``).
DEFAULT_HEADER_TIMEOUT: float = ServeSection.model_fields["header_timeout"].default


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's head.

    The deadline is armed when a connection opens and when the first byte of a
    further request arrives on a kept-alive one (between requests uvicorn's own
    keep-alive timeout applies); it is cancelled once h11 has the whole head.
    """

    header_timeout = DEFAULT_HEADER_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows the base's BaseTransport the same way
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self._awaiting_head():
            self._arm()
        super().data_received(data)
        if not self._awaiting_head():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.warning(
                "closed the connection from %s: no complete request head within %s s",
                self.client[0] if self.client else "?",
                self.header_timeout,
            )
            self.transport.close()


def _protocol(header_timeout: float) -> type[HeaderDeadlineProtocol]:
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout}
    )


def uvicorn_config(
    app: Starlette,
    *,
    host: str,
    port: int,
    access_log: bool = False,
    lifespan: Literal["on", "off"] = "on",
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
) -> uvicorn.Config:
    """uvicorn settings for the receiver: lifespan on (it runs the workers), a header deadline.

    uvicorn runs on uvloop when it is installed (``uvicorn[standard]``).
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_protocol(header_timeout),
        lifespan=lifespan,
        log_level="warning",
        access_log=access_log,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        # Deliveries are small; a client that sends headers slowly is not worth waiting for.
        timeout_keep_alive=5,
        # No websocket routes: do not load a websocket implementation at all.
        ws="none",
    )


def serve_forever(
    app: Starlette, *, host: str, port: int, header_timeout: float = DEFAULT_HEADER_TIMEOUT
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM stop it gracefully)."""
    server = uvicorn.Server(
        uvicorn_config(app, host=host, port=port, access_log=True, header_timeout=header_timeout)
    )
    server.run()
    if not server.started:
        raise OSError(f"could not serve on {host}:{port}")


class ServerThread:
    """Run an ASGI app under uvicorn in a thread on loopback; ``with`` starts and stops it.

    ``port`` 0 picks a free port; a busy port falls back to a free one when
    ``fallback`` is set. ``lifespan`` is "on" for the receiver (it runs the workers).
    """

    def __init__(
        self,
        app: Starlette,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fallback: bool = False,
        lifespan: Literal["on", "off"] = "on",
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
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
                app, host=host, port=self.port, lifespan=lifespan, header_timeout=header_timeout
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
