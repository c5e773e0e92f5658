"""The typed rows queries return: one per session, one per segment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session: who recorded, how much, and what failed."""

    session_id: str
    meeting_id: str | None
    updated_at: datetime
    #: Earliest segment start, when any segment's start is known.
    started_at: datetime | None
    participants: tuple[str, ...]
    segment_count: int
    #: Segment count per kind (``audio``, ``video``, ...).
    segments_by_kind: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    duration_seconds: float = 0.0
    failures: int = 0
    #: Key of the session's manifest on the backend.
    manifest_key: str = ""

    def to_record(self) -> dict[str, Any]:
        """A flat, JSON-ready form with the manifest's camelCase names."""
        return {
            "sessionId": self.session_id,
            "meetingId": self.meeting_id,
            "updatedAt": self.updated_at.isoformat(),
            "startedAt": self.started_at.isoformat() if self.started_at else None,
            "participants": list(self.participants),
            "segmentCount": self.segment_count,
            "segmentsByKind": dict(self.segments_by_kind),
            "bytes": self.bytes,
            "durationSeconds": self.duration_seconds,
            "failures": self.failures,
        }


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """One archived segment, as its session's manifest records it."""

    session_id: str
    participant_id: str
    kind: str
    key: str
    filename: str
    size: int
    sha256: str
    crc32c: str
    duration_seconds: float | None
    started_at: datetime | None
    archived_at: datetime
    container: str | None

    def to_record(self) -> dict[str, Any]:
        """A flat, JSON-ready form with the manifest's camelCase names."""
        return {
            "sessionId": self.session_id,
            "participantId": self.participant_id,
            "kind": self.kind,
            "key": self.key,
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
            "crc32c": self.crc32c,
            "durationSeconds": self.duration_seconds,
            "startedAt": self.started_at.isoformat() if self.started_at else None,
            "archivedAt": self.archived_at.isoformat(),
            "container": self.container,
        }


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One file ``track-archive export`` wrote into the archive, as its manifest lists it."""

    session_id: str
    #: None for the session's audio mix.
    participant_id: str | None
    pair: str
    mode: str
    format: str
    key: str
    size: int
    sha256: str
    start_seconds: float | None
    duration_seconds: float | None
    created_at: datetime
    source_count: int

    def to_record(self) -> dict[str, Any]:
        """A flat, JSON-ready form with the manifest's camelCase names."""
        return {
            "sessionId": self.session_id,
            "participantId": self.participant_id,
            "pair": self.pair,
            "mode": self.mode,
            "format": self.format,
            "key": self.key,
            "size": self.size,
            "sha256": self.sha256,
            "startSeconds": self.start_seconds,
            "durationSeconds": self.duration_seconds,
            "createdAt": self.created_at.isoformat(),
            "sources": self.source_count,
        }
