"""The stand-in recording service's HTTP side, served by uvicorn on loopback."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route


def _md5_etag(path: Path) -> str:
    return '"' + hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() + '"'


def build_app(root: Path) -> Starlette:
    """Serve every file under ``root`` as the service's CDN does, ranges included."""
    root = root.resolve()
    etags: dict[Path, str] = {}

    async def serve_file(request: Request) -> Response:
        target = (root / request.path_params["path"]).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return PlainTextResponse("not found", status_code=404)
        if target not in etags:
            etags[target] = _md5_etag(target)
        # A plain-MD5 ETag, as the service's CDN gives, lets clients check the bytes.
        return FileResponse(target, media_type="video/webm", headers={"ETag": etags[target]})

    return Starlette(routes=[Route("/{path:path}", serve_file, methods=["GET", "HEAD"])])


class StandInServer:
    """Run an ASGI app with uvicorn in a thread on 127.0.0.1 (``with`` stops it).

    ``port`` 0 picks a free port; another busy port falls back to a free one
    unless ``fallback`` is false.
    """

    def __init__(
        self, app: Starlette, *, host: str = "127.0.0.1", port: int = 0, fallback: bool = True
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            if not fallback:
                raise
            self._sock.bind((host, 0))
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:43121``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> StandInServer:
        """Start serving and wait until it accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the stand-in server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
