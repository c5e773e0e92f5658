"""The default journal: one SQLite file in WAL mode, synced on every commit.

A connection is shared between threads behind a lock: the journal's writes are
tiny and the lock keeps each operation atomic without relying on SQLite's
busy handling inside one process. Separate processes coordinate through
SQLite's own locking (``busy_timeout``), so two runs may share one file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import JournalError
from .base import EventRecord, Journal, NewEvent, NewSegment, SegmentRecord, SegmentState
from .leases import lease_lapsed
from .results import VerifiedDownload
from .rows import INSERT_SEGMENT, event_of, insert_segments, segment_of, segment_params
from .schema import prepare

# Claiming takes the oldest claimable row through an index (``segments_state`` or
# ``segments_session_state``), reading one row however many are pending.
CLAIM_PENDING = (
    "SELECT * FROM segments WHERE state = 'pending'"
    " AND (not_before IS NULL OR not_before <= :now) ORDER BY arrival LIMIT 1"
)
CLAIM_PENDING_IN_SESSION = (
    "SELECT * FROM segments WHERE session_id = :session AND state = 'pending'"
    " AND (not_before IS NULL OR not_before <= :now) ORDER BY arrival LIMIT 1"
)
# What a manifest merge has not taken yet, read through the partial indexes that hold only
# those rows (named, so the planner never prefers an index over the whole history).
UNMANIFESTED_SESSIONS = (
    "SELECT session_id FROM segments INDEXED BY segments_unmanifested"
    " WHERE manifested = 0 AND state IN (:done, :failed)"
    " UNION SELECT session_id FROM events INDEXED BY events_unmanifested"
    " WHERE manifested = 0 AND processed = 1 AND session_id IS NOT NULL ORDER BY 1"
)
UNMANIFESTED_EVENTS = (
    "SELECT * FROM events INDEXED BY events_unmanifested"
    " WHERE session_id = :session AND manifested = 0 AND processed = 1 ORDER BY seq"
)
UNMANIFESTED_SEGMENTS = (
    "SELECT * FROM segments INDEXED BY segments_unmanifested"
    " WHERE session_id = :session AND manifested = 0 AND state IN (:done, :failed) ORDER BY arrival"
)
#: Segment ids per ``IN (...)`` query (SQLite's default limit on parameters is 999 before 3.32).
_ID_BATCH = 500
_SETTLED = {"done": SegmentState.DONE.value, "failed": SegmentState.FAILED.value}
# Active rows are the few segments being worked on: each is checked for a dead owner.
CLAIM_ACTIVE = "SELECT * FROM segments WHERE state = 'active' ORDER BY arrival"
CLAIM_ACTIVE_IN_SESSION = (
    "SELECT * FROM segments WHERE session_id = :session AND state = 'active' ORDER BY arrival"
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SQLiteJournal(Journal):
    """A journal in one SQLite file."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA busy_timeout=30000")
            prepare(self._db, path)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"{path}: cannot open the journal ({exc})") from exc
        self._synchronous = synchronous
        self._lock = threading.Lock()
        #: Write transactions committed by this connection (each one a sync to disk).
        self.commits = 0

    # -- helpers --------------------------------------------------------------

    def _run(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        try:
            with self._lock:
                self._db.row_factory = sqlite3.Row
                return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: {exc}") from exc

    def _transaction(self, work: Any, *, synced: bool = True) -> Any:
        """Run ``work(db)`` inside one IMMEDIATE transaction (a writer lock up front).

        ``synced=False`` commits without waiting for the disk (the next synced
        commit writes it out too): only for changes whose loss in a crash is harmless.
        """
        try:
            with self._lock:
                self._db.row_factory = sqlite3.Row
                if not synced:
                    self._db.execute("PRAGMA synchronous=NORMAL")
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        value = work(self._db)
                    except BaseException:
                        self._db.execute("ROLLBACK")
                        raise
                    self._db.execute("COMMIT")
                finally:
                    if not synced:
                        self._db.execute(f"PRAGMA synchronous={self._synchronous}")
                self.commits += 1
                return value
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: {exc}") from exc

    # -- events ---------------------------------------------------------------

    def record_event(
        self,
        *,
        event_id: str,
        webhook_type: str,
        payload: dict[str, Any],
        source: str,
        session_id: str | None = None,
        participant_id: str | None = None,
        kind: str | None = None,
    ) -> bool:
        event = NewEvent(
            event_id=event_id,
            webhook_type=webhook_type,
            payload_json=json.dumps(payload, ensure_ascii=False),
            source=source,
            session_id=session_id,
            participant_id=participant_id,
            kind=kind,
        )
        return self.record_events([event])[0]

    def record_events(self, events: list[NewEvent]) -> list[bool]:
        """All of ``events`` (and the segments they carry) in one transaction: one sync to disk."""

        def work(db: sqlite3.Connection) -> list[bool]:
            received = _now()
            flags = []
            for e in events:
                new = (
                    db.execute(
                        "INSERT OR IGNORE INTO events (event_id, webhook_type, session_id,"
                        " participant_id, kind, payload, source, received_at, processed)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            e.event_id,
                            e.webhook_type,
                            e.session_id,
                            e.participant_id,
                            e.kind,
                            e.payload_json,
                            e.source,
                            received,
                            int(e.segments is not None),
                        ),
                    ).rowcount
                    == 1
                )
                if new and e.segments:
                    insert_segments(db, e.segments, received)
                flags.append(new)
            return flags

        result: list[bool] = self._transaction(work)
        return result

    def unprocessed_events(self, limit: int = 1000) -> list[EventRecord]:
        rows = self._run("SELECT * FROM events WHERE processed = 0 ORDER BY seq LIMIT ?", (limit,))
        return [event_of(r) for r in rows]

    def events(self, *, session_id: str | None = None) -> list[EventRecord]:
        if session_id is None:
            rows = self._run("SELECT * FROM events ORDER BY seq")
        else:
            rows = self._run(
                "SELECT * FROM events WHERE session_id = ? ORDER BY seq", (session_id,)
            )
        return [event_of(r) for r in rows]

    def unmanifested_events(self, session_id: str) -> list[EventRecord]:
        rows = self._run(UNMANIFESTED_EVENTS, {"session": session_id})
        return [event_of(r) for r in rows]

    # -- segments -------------------------------------------------------------

    def add_segments(
        self, event_id: str, segments: list[NewSegment], *, retry_failed: bool = False
    ) -> int:
        def work(db: sqlite3.Connection) -> int:
            changed = 0
            for seg in segments:
                cursor = db.execute(INSERT_SEGMENT, segment_params(seg, _now()))
                if cursor.rowcount == 0 and retry_failed:
                    # Queued again by hand: a fresh count of attempts, no waiting.
                    cursor = db.execute(
                        "UPDATE segments SET state = ?, error = NULL, failures = 0, not_before = NULL,"
                        " updated_at = ? WHERE segment_id = ? AND state = ?",
                        (SegmentState.PENDING, _now(), seg.segment_id, SegmentState.FAILED),
                    )
                changed += cursor.rowcount
            db.execute("UPDATE events SET processed = 1 WHERE event_id = ?", (event_id,))
            return changed

        return int(self._transaction(work))

    def claim(
        self, worker: str, *, lease_seconds: float, session_id: str | None = None
    ) -> SegmentRecord | None:
        def work(db: sqlite3.Connection) -> SegmentRecord | None:
            now = datetime.now(UTC).timestamp()
            params = {"now": now, "session": session_id}
            in_session = session_id is not None
            candidates = [
                row
                for row in db.execute(
                    CLAIM_ACTIVE_IN_SESSION if in_session else CLAIM_ACTIVE, params
                )
                if lease_lapsed(row["owner"], row["lease_until"], now)
            ][:1]
            pending = db.execute(
                CLAIM_PENDING_IN_SESSION if in_session else CLAIM_PENDING, params
            ).fetchone()
            if pending is not None:
                candidates.append(pending)
            if not candidates:
                return None
            row = min(candidates, key=lambda r: r["arrival"])
            db.execute(
                "UPDATE segments SET state = ?, owner = ?, lease_until = ?, attempts = attempts + 1,"
                " not_before = NULL, updated_at = ? WHERE segment_id = ?",
                (SegmentState.ACTIVE, worker, now + lease_seconds, _now(), row["segment_id"]),
            )
            fresh = db.execute(
                "SELECT * FROM segments WHERE segment_id = ?", (row["segment_id"],)
            ).fetchone()
            return segment_of(fresh)

        result: SegmentRecord | None = self._transaction(work)
        return result

    def finish(
        self,
        segment_id: str,
        worker: str,
        state: SegmentState,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        # Only the lease holder records a verdict: a worker whose lease ran out and
        # was taken over must not overwrite the new owner's outcome with its own.
        cursor = self._transaction(
            lambda db: db.execute(
                "UPDATE segments SET state = ?, result = ?, error = ?, owner = NULL, lease_until = NULL,"
                " manifested = 0, updated_at = ? WHERE segment_id = ? AND owner = ? AND state = ?",
                (
                    state,
                    json.dumps(result) if result is not None else None,
                    error,
                    _now(),
                    segment_id,
                    worker,
                    SegmentState.ACTIVE,
                ),
            )
        )
        return bool(cursor.rowcount == 1)

    def retry_later(self, segment_id: str, worker: str, *, delay: float, error: str) -> bool:
        cursor = self._transaction(
            lambda db: db.execute(
                "UPDATE segments SET state = ?, owner = NULL, lease_until = NULL, error = ?,"
                " failures = failures + 1, not_before = ?, updated_at = ?"
                " WHERE segment_id = ? AND owner = ? AND state = ?",
                (
                    SegmentState.PENDING,
                    error,
                    datetime.now(UTC).timestamp() + delay,
                    _now(),
                    segment_id,
                    worker,
                    SegmentState.ACTIVE,
                ),
            )
        )
        return bool(cursor.rowcount == 1)

    def note_verified(self, segment_id: str, worker: str, verified: VerifiedDownload) -> None:
        self._transaction(
            lambda db: db.execute(
                "UPDATE segments SET result = ?, updated_at = ? WHERE segment_id = ? AND owner = ?",
                (json.dumps(verified.to_json()), _now(), segment_id, worker),
            )
        )

    def release(self, segment_id: str, worker: str) -> None:
        self._transaction(
            lambda db: db.execute(
                "UPDATE segments SET state = ?, owner = NULL, lease_until = NULL, updated_at = ?"
                " WHERE segment_id = ? AND owner = ? AND state = ?",
                (SegmentState.PENDING, _now(), segment_id, worker, SegmentState.ACTIVE),
            )
        )

    def segments(
        self, *, session_id: str | None = None, states: tuple[SegmentState, ...] = ()
    ) -> list[SegmentRecord]:
        clauses, params = [], []
        if session_id is not None:
            clauses.append("session_id = ?")
            params.append(session_id)
        if states:
            clauses.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._run(f"SELECT * FROM segments{where} ORDER BY arrival", tuple(params))
        return [segment_of(r) for r in rows]

    # -- manifests ------------------------------------------------------------

    def unmanifested_sessions(self) -> list[str]:
        return [r[0] for r in self._run(UNMANIFESTED_SESSIONS, _SETTLED)]

    def unmanifested_segments(self, session_id: str) -> list[SegmentRecord]:
        rows = self._run(UNMANIFESTED_SEGMENTS, {"session": session_id, **_SETTLED})
        return [segment_of(r) for r in rows]

    def mark_manifested(self, *, segment_ids: list[str], event_ids: list[str]) -> None:
        # Not synced: the manifest itself is already on disk, and a mark lost in a crash
        # only makes the next flush merge those entries again, which merges leave unchanged.
        # Each manifest flush then holds the journal (and the deliveries' group commit) for
        # no disk sync of its own.
        self._set_manifested(segment_ids, event_ids, manifested=True, synced=False)

    def done_segments(self, segment_ids: Collection[str]) -> list[SegmentRecord]:
        ids = list(segment_ids)
        rows: list[sqlite3.Row] = []
        for start in range(0, len(ids), _ID_BATCH):
            batch = ids[start : start + _ID_BATCH]
            rows += self._run(
                f"SELECT * FROM segments WHERE state = ? AND segment_id IN ({', '.join('?' * len(batch))})",
                (SegmentState.DONE, *batch),
            )
        return [segment_of(r) for r in sorted(rows, key=lambda r: r["arrival"])]

    def requeue(self, segment_ids: Collection[str]) -> int:
        def work(db: sqlite3.Connection) -> int:
            cursor = db.executemany(
                "UPDATE segments SET state = ?, result = NULL, error = NULL, failures = 0,"
                " not_before = NULL, updated_at = ? WHERE segment_id = ? AND state = ?",
                [(SegmentState.PENDING, _now(), s, SegmentState.DONE) for s in segment_ids],
            )
            return cursor.rowcount

        return int(self._transaction(work))

    def mark_unmanifested(
        self, *, segment_ids: Collection[str], event_ids: Collection[str]
    ) -> None:
        self._set_manifested(segment_ids, event_ids, manifested=False, synced=True)

    def _set_manifested(
        self,
        segment_ids: Collection[str],
        event_ids: Collection[str],
        *,
        manifested: bool,
        synced: bool,
    ) -> None:
        flag = int(manifested)

        def work(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE segments SET manifested = ? WHERE segment_id = ?",
                [(flag, s) for s in segment_ids],
            )
            db.executemany(
                "UPDATE events SET manifested = ? WHERE event_id = ?",
                [(flag, e) for e in event_ids],
            )

        self._transaction(work, synced=synced)

    def counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in SegmentState}
        for row in self._run("SELECT state, COUNT(*) FROM segments GROUP BY state"):
            counts[row[0]] = row[1]
        counts["events_unprocessed"] = self._run("SELECT COUNT(*) FROM events WHERE processed = 0")[
            0
        ][0]
        counts["events"] = self._run("SELECT COUNT(*) FROM events")[0][0]
        return counts

    def close(self) -> None:
        with self._lock:
            self._db.close()
