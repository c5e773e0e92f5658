"""From a stopped webhook to segment jobs, and from a finished job to a manifest entry."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from ..errors import InputError, UnsafeIdentifier
from ..events import TrackEvent
from ..journal import NewSegment, SegmentRecord
from ..layout import segment_key
from ..manifest import Segment, Stream
from ..media.naming import started_at_from_filename


def segment_id(key: str, source_url: str) -> str:
    """One job per (final key, source URL): duplicate deliveries map to the same job."""
    return hashlib.sha256(f"{key}\n{source_url}".encode()).hexdigest()[:32]


def plan_segments(event: TrackEvent, *, source: str, line: int | None = None) -> list[NewSegment]:
    """The segment jobs of a stopped webhook; unsafe IDs are an ``InputError``."""
    data = event.data
    jobs: list[NewSegment] = []
    for index, detail in enumerate(data.fileDetails):
        try:
            key = segment_key(data.sessionId, data.participantId, data.kind, detail.filename)
        except UnsafeIdentifier as exc:
            raise InputError(
                f"data.fileDetails[{index}]: {exc}", source=source, line=line
            ) from None
        jobs.append(
            NewSegment(
                segment_id=segment_id(key, detail.fileUrl),
                session_id=data.sessionId,
                meeting_id=data.meetingId,
                participant_id=data.participantId,
                kind=data.kind,
                source_url=detail.fileUrl,
                source_path=detail.filePath,
                filename=detail.filename,
                key=key,
            )
        )
    return jobs


def manifest_segment(record: SegmentRecord, result: dict[str, Any]) -> Segment:
    """The manifest entry of a segment archived with ``result`` (see ``store.stored_result``)."""
    started = started_at_from_filename(record.filename)
    media_start = result.get("started_at")
    return Segment(
        key=result["key"],
        filename=result["key"].rsplit("/", 1)[-1]
        if result.get("conflict_with")
        else record.filename,
        sourceUrl=record.source_url,
        sourcePath=record.source_path,
        size=result["size"],
        sha256=result["sha256"],
        crc32c=result["crc32c"],
        md5=result.get("md5"),
        durationSeconds=result.get("duration_seconds"),
        container=result.get("container"),
        streams=[Stream(type=s["type"], codec=s["codec"]) for s in result.get("streams", [])],
        startedAt=started or (datetime.fromisoformat(media_start) if media_start else None),
        startedAtMs=int(started.timestamp() * 1000) if started else None,
        archivedAt=datetime.fromisoformat(result["archived_at"]),
        arrival=record.arrival,
        conflictWith=result.get("conflict_with"),
    )
