"""Running the receiver under uvicorn: in the foreground (``serve``) or in a thread (demo, tests)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Literal

import uvicorn
from starlette.applications import Starlette

#: Seconds uvicorn waits for open requests when asked to stop.
GRACEFUL_SHUTDOWN = 5


def uvicorn_config(
    app: Starlette,
    *,
    host: str,
    port: int,
    access_log: bool = False,
    lifespan: Literal["on", "off"] = "on",
) -> uvicorn.Config:
    """uvicorn settings for the receiver: lifespan on (it runs the workers)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,
        log_level="warning",
        access_log=access_log,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        # Deliveries are small; a client that sends headers slowly is not worth waiting for.
        timeout_keep_alive=5,
    )


def serve_forever(app: Starlette, *, host: str, port: int) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM stop it gracefully)."""
    server = uvicorn.Server(uvicorn_config(app, host=host, port=port, access_log=True))
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
            uvicorn_config(app, host=host, port=self.port, lifespan=lifespan)
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
