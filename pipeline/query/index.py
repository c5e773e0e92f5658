"""A local SQLite index of an archive's manifests, refreshed by version tokens.

A refresh lists the ``<session>/manifest.json`` keys, re-reads only those
whose version token (ETag, generation, local version id) differs from the one
indexed, and drops sessions whose manifest vanished. A query over thousands
of sessions on a bucket then reads no manifest that has not changed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from storage_backends.base import Backend, ObjectStat
from storage_backends.errors import ObjectNotFound

from ..errors import TrackArchiveError
from ..layout import is_manifest_key
from ..manifest import Manifest

#: Bump when the tables change; an index of another version is rebuilt.
SCHEMA_VERSION = 2
#: Manifests read in parallel during a refresh.
READ_CONCURRENCY = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS manifests (
    key TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    error TEXT,
    session_id TEXT,
    meeting_id TEXT,
    updated_at REAL,
    started_at REAL,
    participants TEXT,
    by_kind TEXT,
    segment_count INTEGER,
    bytes INTEGER,
    duration REAL,
    failures INTEGER
);
CREATE TABLE IF NOT EXISTS segments (
    manifest_key TEXT NOT NULL,
    session_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    key TEXT NOT NULL,
    filename TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    crc32c TEXT NOT NULL,
    duration REAL,
    started_at REAL,
    start_ms INTEGER,
    archived_at REAL NOT NULL,
    container TEXT
);
CREATE TABLE IF NOT EXISTS exports (
    manifest_key TEXT NOT NULL,
    session_id TEXT NOT NULL,
    participant_id TEXT,
    pair TEXT NOT NULL,
    mode TEXT NOT NULL,
    format TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    start REAL,
    duration REAL,
    created_at REAL NOT NULL,
    sources INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS exports_by_manifest ON exports (manifest_key);
CREATE INDEX IF NOT EXISTS segments_by_manifest ON segments (manifest_key);
CREATE INDEX IF NOT EXISTS segments_by_session ON segments (session_id, participant_id, kind);
"""


class IndexUnavailable(TrackArchiveError):
    """The local index file cannot be opened or written."""


@dataclass
class RefreshStats:
    """What one refresh did."""

    read: int = 0
    unchanged: int = 0
    dropped: int = 0
    #: Manifest keys that are not valid manifests (skipped by queries).
    unreadable: list[str] = field(default_factory=list)


def index_path_for(directory: Path, backend_url: str) -> Path:
    """The index file for one backend inside a cache directory."""
    digest = hashlib.sha256(backend_url.encode("utf-8")).hexdigest()[:24]
    return directory / f"{digest}.sqlite3"


def _token(stat: ObjectStat) -> str:
    if stat.version:
        return stat.version
    # No version token from this backend: size and time written stand in for it.
    return f"{stat.size}/{stat.updated.isoformat() if stat.updated else ''}"


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _start_ms(seg: Any) -> int | None:
    return seg.start().epoch_ms


def _rows_for(key: str, manifest: Manifest) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    segments = []
    by_kind: dict[str, int] = {}
    starts = []
    for pid, kinds in manifest.participants.items():
        for kind, segs in kinds.items():
            by_kind[kind] = by_kind.get(kind, 0) + len(segs)
            for ordinal, seg in enumerate(segs):
                start_ms = _start_ms(seg)
                if start_ms is not None:
                    starts.append(start_ms)
                segments.append(
                    (key, manifest.sessionId, pid, kind, ordinal, seg.key, seg.filename, seg.size,
                     seg.sha256, seg.crc32c, seg.durationSeconds,
                     start_ms / 1000 if start_ms is not None else None, start_ms,
                     _ts(seg.archivedAt), seg.container)
                )  # fmt: skip
    session = {
        "session_id": manifest.sessionId,
        "meeting_id": manifest.meetingId,
        "updated_at": _ts(manifest.updatedAt),
        "started_at": min(starts) / 1000 if starts else None,
        "participants": json.dumps(list(manifest.participants)),
        "by_kind": json.dumps(by_kind, sort_keys=True),
        "segment_count": len(segments),
        "bytes": sum(row[7] for row in segments),
        "duration": round(sum(row[10] or 0.0 for row in segments), 3),
        "failures": len(manifest.failures),
    }
    return session, segments


class ManifestIndex:
    """The SQLite index of one backend's manifests (``path=None``: in memory)."""

    def __init__(self, path: Path | None = None) -> None:
        target = ":memory:"
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise IndexUnavailable(
                    f"{path.parent}: cannot create index directory ({exc.strerror})"
                ) from None
            target = str(path)
        self.path = path
        try:
            self._db = sqlite3.connect(target, timeout=30.0, isolation_level=None)
            self._prepare()
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"{target}: cannot open the index ({exc})") from None

    def _prepare(self) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if row is not None and int(row[0]) != SCHEMA_VERSION:
            # An index is only a cache: rebuild it from the manifests.
            with self._transaction():
                db.execute("DELETE FROM segments")
                db.execute("DELETE FROM exports")
                db.execute("DELETE FROM manifests")
        db.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (queries use it read-only)."""
        return self._db

    def refresh(self, backend: Backend, *, concurrency: int = READ_CONCURRENCY) -> RefreshStats:
        """Bring the index up to date with ``backend``, reading only changed manifests."""
        listed = {s.key: _token(s) for s in backend.list("") if is_manifest_key(s.key)}
        known = dict(self._db.execute("SELECT key, token FROM manifests").fetchall())
        changed = [key for key, token in listed.items() if known.get(key) != token]
        vanished = [key for key in known if key not in listed]
        stats = RefreshStats(unchanged=len(listed) - len(changed), dropped=len(vanished))

        def read(key: str) -> tuple[str, bytes, ObjectStat] | None:
            try:
                data, stat = backend.get_bytes(key)
            except ObjectNotFound:
                return None
            return key, data, stat

        with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="index") as pool:
            fetched = [r for r in pool.map(read, changed) if r is not None]
        try:
            with self._transaction() as db:
                for key in vanished:
                    self._forget(db, key)
                for key, data, stat in fetched:
                    self._forget(db, key)
                    stats.read += 1
                    self._store(db, key, data, _token(stat), stats)
        except sqlite3.Error as exc:
            raise IndexUnavailable(
                f"{self.path or ':memory:'}: cannot update the index ({exc})"
            ) from None
        return stats

    def unreadable(self) -> list[tuple[str, str]]:
        """Manifest keys that are not valid manifests, with why: every answer leaves them out."""
        rows = self._db.execute(
            "SELECT key, error FROM manifests WHERE error IS NOT NULL ORDER BY key"
        ).fetchall()
        return [(str(key), str(error)) for key, error in rows]

    @staticmethod
    def _forget(db: sqlite3.Connection, key: str) -> None:
        db.execute("DELETE FROM segments WHERE manifest_key = ?", (key,))
        db.execute("DELETE FROM exports WHERE manifest_key = ?", (key,))
        db.execute("DELETE FROM manifests WHERE key = ?", (key,))

    @staticmethod
    def _store(
        db: sqlite3.Connection, key: str, data: bytes, token: str, stats: RefreshStats
    ) -> None:
        try:
            manifest = Manifest.from_json(data)
        except ValidationError as exc:
            stats.unreadable.append(key)
            db.execute(
                "INSERT INTO manifests (key, token, error) VALUES (?, ?, ?)",
                (key, token, f"not a valid manifest ({exc.error_count()} errors)"),
            )
            return
        session, segments = _rows_for(key, manifest)
        columns = ", ".join(session)
        marks = ", ".join("?" for _ in session)
        db.execute(
            f"INSERT INTO manifests (key, token, {columns}) VALUES (?, ?, {marks})",
            (key, token, *session.values()),
        )
        db.executemany(f"INSERT INTO segments VALUES ({', '.join('?' * 15)})", segments)
        exports = [
            (key, manifest.sessionId, e.participantId, e.pair, e.mode, e.format, e.key, e.size,
             e.sha256, e.startSeconds, e.durationSeconds, _ts(e.createdAt), len(e.sources))
            for e in manifest.exports
        ]  # fmt: skip
        db.executemany(f"INSERT INTO exports VALUES ({', '.join('?' * 13)})", exports)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> ManifestIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
