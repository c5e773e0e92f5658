"""The SQLite journal's tables, and the upgrade of a journal written by an earlier release.

A journal file outlives the program that wrote it: opening one of an older
schema upgrades it in place, inside one transaction, so an existing user's
pending work carries over. A journal of a newer schema than this program
knows is refused rather than misread.

Schema history:

1. events and segments.
2. ``segments.not_before`` (a segment retried later waits until then) and
   ``segments.failures`` (unexpected failures so far, for bounded retries);
   an index for claiming within one session.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import JournalError

SCHEMA_VERSION = 2

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    webhook_type TEXT NOT NULL,
    session_id TEXT, participant_id TEXT, kind TEXT,
    payload TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    processed INTEGER NOT NULL DEFAULT 0,
    manifested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_pending ON events (processed, seq);
CREATE INDEX IF NOT EXISTS events_session ON events (session_id, seq);
CREATE TABLE IF NOT EXISTS segments (
    arrival INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL, meeting_id TEXT,
    participant_id TEXT NOT NULL, kind TEXT NOT NULL,
    source_url TEXT NOT NULL, source_path TEXT,
    filename TEXT NOT NULL, key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT, lease_until REAL,
    result TEXT, error TEXT,
    manifested INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    not_before REAL,
    failures INTEGER NOT NULL DEFAULT 0
);
"""

# Claiming reads one row through these, never a scan of every pending row.
_INDEXES = """
CREATE INDEX IF NOT EXISTS segments_state ON segments (state, arrival);
CREATE INDEX IF NOT EXISTS segments_session ON segments (session_id, arrival);
CREATE INDEX IF NOT EXISTS segments_session_state ON segments (session_id, state, arrival);
"""

# A manifest merge looks for what is not merged yet. These partial indexes hold only those
# rows, so finding them costs the same however much merged history the journal keeps
# (a full scan of it held the journal, and every delivery's commit, for longer and longer).
# They change no table: a journal holding them still opens with an older track-archive.
_MERGE_INDEXES = """
CREATE INDEX IF NOT EXISTS events_unmanifested ON events (session_id)
    WHERE manifested = 0 AND processed = 1;
CREATE INDEX IF NOT EXISTS segments_unmanifested ON segments (session_id) WHERE manifested = 0;
"""

# Each step takes a journal of version N - 1 to version N.
_UPGRADES: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE segments ADD COLUMN not_before REAL",
        "ALTER TABLE segments ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
    ),
}


def _version(db: sqlite3.Connection) -> int | None:
    row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
    return int(row[0]) if row is not None else None


def prepare(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables of a new journal, or upgrade an older one in place."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # One writer at a time: two processes opening an old journal at once upgrade it once.
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _version(db)
        if version is None:
            for statement in filter(str.strip, (_TABLES + _INDEXES + _MERGE_INDEXES).split(";")):
                db.execute(statement)
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif version > SCHEMA_VERSION:
            raise JournalError(
                f"{path}: journal schema {version} is newer than this track-archive reads"
                f" ({SCHEMA_VERSION}); upgrade track-archive"
            )
        elif version < SCHEMA_VERSION:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _UPGRADES[step]:
                    db.execute(statement)
            for statement in filter(str.strip, _INDEXES.split(";")):
                db.execute(statement)
            db.execute("UPDATE meta SET value = ? WHERE name = 'schema'", (str(SCHEMA_VERSION),))
        if version is not None:
            # A journal of this schema written before these indexes existed gets them now.
            for statement in filter(str.strip, _MERGE_INDEXES.split(";")):
                db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


__all__ = ["SCHEMA_VERSION", "prepare"]
