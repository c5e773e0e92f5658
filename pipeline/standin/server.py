"""The stand-in recording service's HTTP side, served by uvicorn on loopback."""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..live.runner import ServerThread


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


class StandInServer(ServerThread):
    """The stand-in's uvicorn in a thread on 127.0.0.1 (``with`` starts and stops it).

    A busy ``port`` falls back to a free one unless ``fallback`` is false.
    """

    def __init__(
        self, app: Starlette, *, host: str = "127.0.0.1", port: int = 0, fallback: bool = True
    ) -> None:
        super().__init__(app, host=host, port=port, fallback=fallback, lifespan="off")
