"""The stand-in's recording API: start/stop, listing, public key and signed webhooks.

``RecordingService(root).app()`` answers like the recording service: a start
call sends ``-starting`` and ``-started`` to the call's ``webhookUrl``; a stop
call writes the track's segments (real WebM files) under ``root``, serves
them, lists them, and sends ``-stopping`` and ``-stopped``. Webhooks are sent
after the answer, signed with a key made at startup. ``drop_stages`` leaves
chosen webhooks unsent, as when a delivery is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..events import KINDS
from ..media import synth
from .meeting import _safe_name
from .server import build_app
from .signing import SigningKey

SIGNATURE_HEADER = "videosdk-signature"


@dataclass
class Recording:
    """One participant track recording, running or finished."""

    id: str
    room_id: str
    session_id: str
    participant_id: str
    kind: str
    webhook_url: str | None
    started_at: datetime
    ended_at: datetime | None = None
    files: list[dict[str, Any]] = field(default_factory=list)

    def listing(self) -> dict[str, Any]:
        """The listing API's entry for this recording."""
        return {
            "id": self.id,
            "roomId": self.room_id,
            "sessionId": self.session_id,
            "participantId": self.participant_id,
            "kind": self.kind,
            "fileFormat": "webm",
            "start": self.started_at.isoformat(),
            "end": self.ended_at.isoformat() if self.ended_at else None,
            "files": self.files,
        }


@dataclass(frozen=True)
class Delivery:
    """One webhook the stand-in sent (or tried to)."""

    url: str
    webhook_type: str
    status: int | None
    error: str | None = None


def _message(status: int, text: str) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status)


class RecordingService:
    """State and routes of the stand-in recording API."""

    def __init__(
        self,
        root: Path,
        *,
        token: str = "standin-token",
        segment_seconds: tuple[float, ...] = (1.0, 0.6),
    ) -> None:
        self.root = root.resolve()
        self.token = token
        self.segment_seconds = segment_seconds
        self.key = SigningKey()
        self.drop_stages: set[str] = set()
        self.api_calls: list[tuple[str, str]] = []
        self.deliveries: list[Delivery] = []
        self.recordings: list[Recording] = []
        self._active: dict[tuple[str, str, str], Recording] = {}
        self._sessions: dict[str, str] = {}
        self._changed = threading.Condition()

    # -- helpers for tests and the demo ----------------------------------------

    def session_of(self, room_id: str) -> str:
        """The session id the stand-in gave ``room_id`` (made on first use)."""
        return self._sessions.setdefault(room_id, hashlib.sha256(room_id.encode()).hexdigest()[:24])

    def wait_for_deliveries(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        """Block until ``count`` webhooks were sent (or raise ``TimeoutError``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.deliveries)} of {count} webhooks were sent")
                self._changed.wait(left)
            return list(self.deliveries)

    def webhook(self, recording: Recording, stage: str) -> dict[str, Any]:
        """The body of ``recording``'s ``-<stage>`` webhook."""
        data: dict[str, Any] = {
            "meetingId": recording.room_id,
            "sessionId": recording.session_id,
            "participantId": recording.participant_id,
            "kind": recording.kind,
        }
        if stage == "stopped":
            data["fileDetails"] = [
                {"filePath": f["filePath"], "fileUrl": f["fileUrl"]} for f in recording.files
            ]
        return {"webhookType": f"participant-track-recording-{stage}", "data": data}

    def signed(self, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """A body and the headers the service would send it with."""
        body = json.dumps(payload).encode("utf-8")
        return body, {"content-type": "application/json", SIGNATURE_HEADER: self.key.sign(body)}

    # -- webhooks -------------------------------------------------------------

    async def _deliver(self, recording: Recording, stages: tuple[str, ...]) -> None:
        if recording.webhook_url is None:
            return
        async with httpx.AsyncClient(timeout=10.0) as client:
            for stage in stages:
                if stage in self.drop_stages:
                    continue
                body, headers = self.signed(self.webhook(recording, stage))
                try:
                    response = await client.post(
                        recording.webhook_url, content=body, headers=headers
                    )
                    delivery = Delivery(recording.webhook_url, stage, response.status_code)
                except httpx.HTTPError as exc:
                    delivery = Delivery(recording.webhook_url, stage, None, type(exc).__name__)
                with self._changed:
                    self.deliveries.append(delivery)
                    self._changed.notify_all()

    # -- routes ---------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == self.token

    async def _body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def start(self, request: Request) -> Response:
        self.api_calls.append(("POST", request.url.path))
        if not self._authorised(request):
            return _message(401, "Invalid token: the Authorization header is missing or wrong")
        body = await self._body(request)
        if body is None:
            return _message(400, "Request body must be a JSON object")
        for name in ("roomId", "participantId", "kind"):
            if not isinstance(body.get(name), str) or not body[name]:
                return _message(400, f"{name} is required")
        if body["kind"] not in KINDS:
            return _message(400, f"kind must be one of {', '.join(KINDS)}")
        if body.get("fileFormat", "webm") != "webm":
            return _message(400, "fileFormat must be webm")
        track = (body["roomId"], body["participantId"], body["kind"])
        if track in self._active:
            return _message(409, "Track recording is already running for this participant")
        session_id = self.session_of(body["roomId"])
        recording = Recording(
            id=hashlib.sha256(f"{track}{len(self.recordings)}".encode()).hexdigest()[:24],
            room_id=body["roomId"],
            session_id=session_id,
            participant_id=body["participantId"],
            kind=body["kind"],
            webhook_url=body.get("webhookUrl"),
            started_at=datetime.now(UTC).replace(microsecond=0),
        )
        self._active[track] = recording
        self.recordings.append(recording)
        return JSONResponse(
            {"message": "Participant track recording started", "id": recording.id},
            background=BackgroundTask(self._deliver, recording, ("starting", "started")),
        )

    async def stop(self, request: Request) -> Response:
        self.api_calls.append(("POST", request.url.path))
        if not self._authorised(request):
            return _message(401, "Invalid token: the Authorization header is missing or wrong")
        body = await self._body(request)
        if body is None:
            return _message(400, "Request body must be a JSON object")
        track = (body.get("roomId"), body.get("participantId"), body.get("kind"))
        recording = self._active.pop(track, None)  # type: ignore[arg-type]  # a miss is a 404 below
        if recording is None:
            return _message(404, "No running track recording for this participant and kind")
        base = str(request.base_url).rstrip("/")
        await asyncio.to_thread(self._record_files, recording, base)
        return JSONResponse(
            {"message": "Participant track recording stopped", "id": recording.id},
            background=BackgroundTask(self._deliver, recording, ("stopping", "stopped")),
        )

    def _record_files(self, recording: Recording, base_url: str) -> None:
        """Write the track's segments: one per stretch the participant was live."""
        at = recording.started_at
        safe = _safe_name(recording.participant_id)
        for seconds in self.segment_seconds:
            epoch_ms = int(at.timestamp() * 1000)
            name = f"track_recording_{safe}_{recording.kind}_{epoch_ms}.webm"
            rel = f"individual-recordings/{recording.session_id}/{safe}/{recording.kind}/{name}"
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if recording.kind in ("audio", "screen_audio"):
                synth.make_webm_audio(path, seconds, started_at=at)
            else:
                synth.make_webm_video(path, seconds, started_at=at)
            recording.files.append(
                {
                    "filePath": "/" + rel,
                    "fileUrl": f"{base_url}/{rel}",
                    "size": path.stat().st_size,
                    # The unit of the service's duration is not documented; milliseconds here.
                    "meta": {"duration": int(seconds * 1000)},
                }
            )
            at += timedelta(seconds=seconds + 5)
        recording.ended_at = at

    async def listing(self, request: Request) -> Response:
        self.api_calls.append(("GET", request.url.path))
        if not self._authorised(request):
            return _message(401, "Invalid token: the Authorization header is missing or wrong")
        query = request.query_params
        if not query.get("roomId"):
            return _message(400, "roomId is required")  # as the API reference marks it
        try:
            page = max(1, int(query.get("page", "1")))
            per_page = min(100, max(1, int(query.get("perPage", "20"))))
        except ValueError:
            return _message(400, "page and perPage must be numbers")
        found = [
            r.listing()
            for r in self.recordings
            if r.ended_at is not None
            and all(
                query.get(param) in (None, value)
                for param, value in (
                    ("roomId", r.room_id),
                    ("sessionId", r.session_id),
                    ("participantId", r.participant_id),
                )
            )
        ]
        last = max(1, -(-len(found) // per_page))
        return JSONResponse(
            {
                "pageInfo": {
                    "currentPage": page,
                    "perPage": per_page,
                    "lastPage": last,
                    "total": len(found),
                },
                "data": found[(page - 1) * per_page : page * per_page],
            }
        )

    async def public_key(self, request: Request) -> Response:
        self.api_calls.append(("GET", request.url.path))
        return JSONResponse({"publicKey": self.key.public_pem})

    def app(self) -> Starlette:
        """The API routes in front of the file server of ``root``."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Starlette(
            routes=[
                Route("/v2/recordings/participant/track/start", self.start, methods=["POST"]),
                Route("/v2/recordings/participant/track/stop", self.stop, methods=["POST"]),
                Route("/v2/recordings/participant/track", self.listing, methods=["GET"]),
                Route("/v2/public/rsa-public-key", self.public_key, methods=["GET"]),
                *build_app(self.root).routes,
            ]
        )
