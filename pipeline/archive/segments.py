"""From a stopped webhook to segment jobs, and from a finished job to a manifest entry."""

from __future__ import annotations

import hashlib

from ..errors import InputError, UnsafeIdentifier
from ..events import TrackEvent
from ..journal import NewSegment, SegmentRecord
from ..layout import segment_key
from ..manifest import Segment, Stream
from ..segment import StartSource, StoredSegment


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


def manifest_segment(record: SegmentRecord, stored: StoredSegment) -> Segment:
    """The manifest entry of ``record``'s segment, stored as ``stored``."""
    start = stored.start(record.filename)
    return Segment(
        key=stored.key,
        filename=stored.filename if stored.conflict_with else record.filename,
        sourceUrl=record.source_url,
        sourcePath=record.source_path,
        size=stored.size,
        sha256=stored.sha256,
        crc32c=stored.crc32c,
        md5=stored.md5,
        durationSeconds=stored.duration_seconds,
        container=stored.container,
        streams=[Stream(type=s.type, codec=s.codec) for s in stored.streams],
        startedAt=start.at,
        # Only the service's own clock (the name) is exact to the millisecond.
        startedAtMs=start.epoch_ms if start.source is StartSource.NAME else None,
        archivedAt=stored.archived_at,
        arrival=record.arrival,
        conflictWith=stored.conflict_with,
    )
