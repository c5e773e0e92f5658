"""Questions asked of an archive's manifests, answered as typed rows.

Every function refreshes the local index first (reading only manifests that
changed since the last call), then answers from SQLite::

    from pathlib import Path
    from storage_backends import open_backend
    from pipeline.query import list_segments, index_path_for

    with open_backend("s3://bucket/archive") as backend:
        index = index_path_for(Path(".track-archive/index"), backend.url)
        for row in list_segments(backend, participant="alice", kind="audio", index_path=index):
            print(row.key, row.duration_seconds)

Without ``index_path`` the index lives in memory and every manifest is read.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from storage_backends.base import Backend

from .index import ManifestIndex
from .rows import ExportRow, SegmentRow, SessionRow

_SESSION_TIME = "COALESCE(started_at, updated_at)"

log = logging.getLogger(__name__)


def _refreshed(index: ManifestIndex, backend: Backend) -> sqlite3.Connection:
    """The index brought up to date; each manifest it cannot read is named, every time.

    A session whose manifest is not valid has no rows: said on each query, not
    only the one that first read it, so a session is never left out in silence.
    """
    index.refresh(backend)
    for key, error in index.unreadable():
        log.warning("%s %s: %s; its session is left out", backend.url, key, error)
    return index.db


def _moment(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)


def _bounds(since: date | datetime | None, until: date | datetime | None) -> tuple[float, float]:
    """``since`` inclusive; ``until`` exclusive for a time, the whole day for a date."""
    low = _moment(since).timestamp() if since is not None else float("-inf")
    high = float("inf")
    if until is not None:
        end = _moment(until)
        if not isinstance(until, datetime):
            end += timedelta(days=1)
        high = end.timestamp()
    return low, high


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def query_sessions(
    db: sqlite3.Connection,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
) -> list[SessionRow]:
    """Sessions whose start (or, lacking one, last update) falls in ``[since, until)``."""
    low, high = _bounds(since, until)
    rows = db.execute(
        f"""SELECT session_id, meeting_id, updated_at, started_at, participants, by_kind,
                   segment_count, bytes, duration, failures, key
            FROM manifests
            WHERE error IS NULL AND {_SESSION_TIME} >= ? AND {_SESSION_TIME} < ?
            ORDER BY {_SESSION_TIME}, session_id""",
        (low, high),
    ).fetchall()
    return [
        SessionRow(
            session_id=r[0],
            meeting_id=r[1],
            updated_at=_dt(r[2]) or datetime.fromtimestamp(0, UTC),
            started_at=_dt(r[3]),
            participants=tuple(json.loads(r[4])),
            segment_count=r[6],
            segments_by_kind=json.loads(r[5]),
            bytes=r[7],
            duration_seconds=r[8],
            failures=r[9],
            manifest_key=r[10],
        )
        for r in rows
    ]


def query_segments(
    db: sqlite3.Connection,
    *,
    session: str | None = None,
    participant: str | None = None,
    kind: str | None = None,
) -> list[SegmentRow]:
    """Segments matching every filter given, in recording order within each session."""
    where = ["m.error IS NULL"]
    params: list[str] = []
    for column, value in (
        ("s.session_id", session),
        ("s.participant_id", participant),
        ("s.kind", kind),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    rows = db.execute(
        f"""SELECT s.session_id, s.participant_id, s.kind, s.key, s.filename, s.size, s.sha256,
                   s.crc32c, s.duration, s.started_at, s.archived_at, s.container
            FROM segments s JOIN manifests m ON m.key = s.manifest_key
            WHERE {" AND ".join(where)}
            ORDER BY COALESCE(m.started_at, m.updated_at), s.session_id,
                     s.start_ms IS NULL, s.start_ms, s.participant_id, s.kind, s.ordinal""",
        params,
    ).fetchall()
    return [
        SegmentRow(
            session_id=r[0],
            participant_id=r[1],
            kind=r[2],
            key=r[3],
            filename=r[4],
            size=r[5],
            sha256=r[6],
            crc32c=r[7],
            duration_seconds=r[8],
            started_at=_dt(r[9]),
            archived_at=_dt(r[10]) or datetime.fromtimestamp(0, UTC),
            container=r[11],
        )
        for r in rows
    ]


def list_sessions(
    backend: Backend,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    index_path: Path | None = None,
) -> list[SessionRow]:
    """One row per session, oldest first; ``until`` given as a date includes that day."""
    with ManifestIndex(index_path) as index:
        return query_sessions(_refreshed(index, backend), since=since, until=until)


def list_segments(
    backend: Backend,
    *,
    session: str | None = None,
    participant: str | None = None,
    kind: str | None = None,
    index_path: Path | None = None,
) -> list[SegmentRow]:
    """One row per segment matching the filters, in recording order."""
    with ManifestIndex(index_path) as index:
        return query_segments(_refreshed(index, backend), session=session, participant=participant, kind=kind)


def query_exports(
    db: sqlite3.Connection,
    *,
    session: str | None = None,
    participant: str | None = None,
) -> list[ExportRow]:
    """Exports matching every filter given, by session, then key."""
    where = ["m.error IS NULL"]
    params: list[str] = []
    for column, value in (("e.session_id", session), ("e.participant_id", participant)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    rows = db.execute(
        f"""SELECT e.session_id, e.participant_id, e.pair, e.mode, e.format, e.key, e.size,
                   e.sha256, e.start, e.duration, e.created_at, e.sources
            FROM exports e JOIN manifests m ON m.key = e.manifest_key
            WHERE {" AND ".join(where)}
            ORDER BY COALESCE(m.started_at, m.updated_at), e.session_id, e.key""",
        params,
    ).fetchall()
    return [
        ExportRow(
            session_id=r[0], participant_id=r[1], pair=r[2], mode=r[3], format=r[4], key=r[5],
            size=r[6], sha256=r[7], start_seconds=r[8], duration_seconds=r[9],
            created_at=_dt(r[10]) or datetime.fromtimestamp(0, UTC), source_count=r[11],
        )
        for r in rows
    ]


def list_exports(
    backend: Backend,
    *,
    session: str | None = None,
    participant: str | None = None,
    index_path: Path | None = None,
) -> list[ExportRow]:
    """One row per export listed in the archive's manifests (``participant`` excludes mixes)."""
    with ManifestIndex(index_path) as index:
        return query_exports(_refreshed(index, backend), session=session, participant=participant)
