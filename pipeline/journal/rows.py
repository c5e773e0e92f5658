"""The SQLite journal's rows and the records they stand for, converted in one place."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .base import EventRecord, NewSegment, SegmentRecord, SegmentState

#: A new segment row, pending; an existing one is kept as it is.
INSERT_SEGMENT = (
    "INSERT OR IGNORE INTO segments (segment_id, session_id, meeting_id, participant_id,"
    " kind, source_url, source_path, filename, key, state, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def segment_params(seg: NewSegment, now: str) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_SEGMENT` for ``seg``, recorded at ``now``."""
    return (
        seg.segment_id,
        seg.session_id,
        seg.meeting_id,
        seg.participant_id,
        seg.kind,
        seg.source_url,
        seg.source_path,
        seg.filename,
        seg.key,
        SegmentState.PENDING,
        now,
    )


def insert_segments(db: sqlite3.Connection, segments: Iterable[NewSegment], now: str) -> None:
    """Insert ``segments`` as pending rows in one statement, keeping rows that exist."""
    db.executemany(INSERT_SEGMENT, [segment_params(seg, now) for seg in segments])


def event_of(row: sqlite3.Row) -> EventRecord:
    """The delivery an ``events`` row holds."""
    return EventRecord(
        event_id=row["event_id"],
        webhook_type=row["webhook_type"],
        session_id=row["session_id"],
        participant_id=row["participant_id"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        source=row["source"],
        received_at=datetime.fromisoformat(row["received_at"]),
        processed=bool(row["processed"]),
        manifested=bool(row["manifested"]),
    )


def segment_of(row: sqlite3.Row) -> SegmentRecord:
    """The segment a ``segments`` row holds."""
    return SegmentRecord(
        segment_id=row["segment_id"],
        session_id=row["session_id"],
        meeting_id=row["meeting_id"],
        participant_id=row["participant_id"],
        kind=row["kind"],
        source_url=row["source_url"],
        source_path=row["source_path"],
        filename=row["filename"],
        key=row["key"],
        arrival=row["arrival"],
        state=SegmentState(row["state"]),
        attempts=row["attempts"],
        result=json.loads(row["result"]) if row["result"] else None,
        error=row["error"],
        manifested=bool(row["manifested"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        failures=row["failures"],
    )
