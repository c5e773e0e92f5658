"""A made-up meeting recorded the way the recording service records one.

Each participant's track is cut into segments where it was muted or stopped,
each segment a real WebM file named like the service's own
(``track_recording_{participantId}_{kind}_{epochMs}.webm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..media import synth

#: (participantId, kind, segment lengths in seconds): restarts give several segments.
DEFAULT_TRACKS: tuple[tuple[str, str, tuple[float, ...]], ...] = (
    ("alice", "audio", (2.0, 1.5, 1.0)),
    ("alice", "video", (2.0, 1.0)),
    ("bob", "audio", (1.5,)),
    ("bob", "screen_video", (2.0,)),
    ("bob", "screen_audio", (2.0,)),
    ("carol/guest", "audio", (1.0, 1.0)),
)


@dataclass(frozen=True, slots=True)
class SegmentFile:
    """One generated segment and where the service would say it lives."""

    participant_id: str
    kind: str
    epoch_ms: int
    path: Path
    file_path: str

    @property
    def filename(self) -> str:
        """The file's name, as the service names it."""
        return self.path.name


@dataclass
class Meeting:
    """A generated meeting: its ids and every segment file."""

    meeting_id: str
    session_id: str
    segments: list[SegmentFile] = field(default_factory=list)

    def tracks(self) -> dict[tuple[str, str], list[SegmentFile]]:
        """Segments grouped by (participantId, kind), in recording order."""
        grouped: dict[tuple[str, str], list[SegmentFile]] = {}
        for seg in sorted(self.segments, key=lambda s: s.epoch_ms):
            grouped.setdefault((seg.participant_id, seg.kind), []).append(seg)
        return grouped


def _safe_name(participant_id: str) -> str:
    # The service's file names embed the id; keep ours path-safe for the demo's disk.
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in participant_id)


def generate_meeting(
    root: Path,
    *,
    session_id: str = "613731342f27f56e4fc4b6d0",
    meeting_id: str = "jvsg-8rjn-j304",
    tracks: tuple[tuple[str, str, tuple[float, ...]], ...] = DEFAULT_TRACKS,
    start: datetime | None = None,
) -> Meeting:
    """Write every segment of a meeting under ``root`` and describe them."""
    meeting = Meeting(meeting_id=meeting_id, session_id=session_id)
    clock = start or datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    for participant_id, kind, lengths in tracks:
        at = clock
        for seconds in lengths:
            epoch_ms = int(at.timestamp() * 1000)
            name = f"track_recording_{_safe_name(participant_id)}_{kind}_{epoch_ms}.webm"
            rel = f"individual-recordings/{session_id}/{_safe_name(participant_id)}/{kind}/{name}"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind in ("audio", "screen_audio"):
                synth.make_webm_audio(path, seconds, started_at=at)
            else:
                synth.make_webm_video(path, seconds, started_at=at)
            meeting.segments.append(SegmentFile(participant_id, kind, epoch_ms, path, "/" + rel))
            # A muted gap between segments, as when a participant unmutes later.
            at += timedelta(seconds=seconds + 7)
        clock += timedelta(seconds=1)
    return meeting


def track_webhook(
    meeting: Meeting,
    participant_id: str,
    kind: str,
    stage: str,
    files: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """One ``participant-track-recording-<stage>`` body, shaped like the service's."""
    data: dict[str, Any] = {
        "meetingId": meeting.meeting_id,
        "sessionId": meeting.session_id,
        "participantId": participant_id,
        "kind": kind,
    }
    if files is not None:
        data["fileDetails"] = files
    return {"webhookType": f"participant-track-recording-{stage}", "data": data}


def stopped_webhooks(meeting: Meeting, base_url: str) -> list[dict[str, Any]]:
    """The full lifecycle of every track, ending in ``-stopped`` with its files' URLs."""
    bodies: list[dict[str, Any]] = []
    for (participant_id, kind), files in meeting.tracks().items():
        for stage in ("starting", "started", "stopping"):
            bodies.append(track_webhook(meeting, participant_id, kind, stage))
        details = [
            {"filePath": f.file_path, "fileUrl": base_url.rstrip("/") + f.file_path} for f in files
        ]
        bodies.append(track_webhook(meeting, participant_id, kind, "stopped", details))
    return bodies
