"""The SQLite journal's contract, on real journal files (and a real process that dies)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.errors import JournalError
from pipeline.journal import NewEvent, NewSegment, SegmentState, SQLiteJournal
from pipeline.journal.sqlite import (
    CLAIM_ACTIVE,
    CLAIM_ACTIVE_IN_SESSION,
    CLAIM_PENDING,
    CLAIM_PENDING_IN_SESSION,
    UNMANIFESTED_EVENTS,
    UNMANIFESTED_SEGMENTS,
    UNMANIFESTED_SESSIONS,
)

LEASE = 3600.0


def segment(n: int, session: str = "s1") -> NewSegment:
    return NewSegment(
        segment_id=f"seg{n:06d}",
        session_id=session,
        meeting_id="m",
        participant_id="alice",
        kind="audio",
        source_url=f"https://cdn.example/{n}.webm",
        source_path=f"/{n}.webm",
        filename=f"{n}.webm",
        key=f"{session}/alice/audio/{n}.webm",
    )


def journal_with(path: Path, segments: list[NewSegment]) -> SQLiteJournal:
    journal = SQLiteJournal(path, synchronous="OFF")
    journal.record_event(
        event_id="e1", webhook_type="participant-track-recording-stopped", payload={}, source="t"
    )
    journal.add_segments("e1", segments)
    return journal


@pytest.fixture
def journal(tmp_path: Path):
    journal = journal_with(tmp_path / "j.sqlite3", [segment(n) for n in range(3)])
    yield journal
    journal.close()


def test_each_pending_segment_is_claimed_once_oldest_first(journal):
    claimed = [journal.claim(f"w{n}", lease_seconds=LEASE) for n in range(4)]
    assert [r.segment_id if r else None for r in claimed] == [
        "seg000000",
        "seg000001",
        "seg000002",
        None,
    ]
    assert all(r.state is SegmentState.ACTIVE and r.attempts == 1 for r in claimed if r)


def test_a_lease_that_ran_out_is_taken_over(journal):
    first = journal.claim("w1", lease_seconds=0.0)
    taken = journal.claim("w2", lease_seconds=LEASE)
    assert taken.segment_id == first.segment_id and taken.attempts == 2


def test_a_worker_whose_lease_was_taken_over_cannot_record_its_verdict(journal):
    stale = journal.claim("w1", lease_seconds=0.0)
    journal.claim("w2", lease_seconds=LEASE)
    assert journal.finish(stale.segment_id, "w2", SegmentState.DONE, result={"key": "new"})
    # The first worker comes back late with a stale failure: it must not win.
    assert not journal.finish(stale.segment_id, "w1", SegmentState.FAILED, error="stale")
    assert not journal.retry_later(stale.segment_id, "w1", delay=0, error="stale")
    (record,) = [r for r in journal.segments() if r.segment_id == stale.segment_id]
    assert (
        record.state is SegmentState.DONE
        and record.result == {"key": "new"}
        and record.error is None
    )


def test_a_finished_segment_cannot_be_finished_again(journal):
    record = journal.claim("w1", lease_seconds=LEASE)
    assert journal.finish(record.segment_id, "w1", SegmentState.DONE, result={})
    assert not journal.finish(record.segment_id, "w1", SegmentState.FAILED, error="late")


def test_a_segment_retried_later_waits_for_its_delay_and_counts_failures(tmp_path):
    journal = journal_with(tmp_path / "j.sqlite3", [segment(1)])
    record = journal.claim("w1", lease_seconds=LEASE)
    assert journal.retry_later(record.segment_id, "w1", delay=3600, error="OSError: boom")
    assert journal.claim("w2", lease_seconds=LEASE) is None  # not before an hour
    (waiting,) = journal.segments()
    assert (
        waiting.state is SegmentState.PENDING
        and waiting.failures == 1
        and waiting.error == "OSError: boom"
    )
    record = journal_with(tmp_path / "k.sqlite3", [segment(2)]).claim("w1", lease_seconds=LEASE)
    journal2 = SQLiteJournal(tmp_path / "k.sqlite3")
    assert journal2.retry_later(record.segment_id, "w1", delay=0, error="again")
    assert journal2.claim("w2", lease_seconds=LEASE).failures == 1


def test_retry_failed_queues_a_failed_segment_again_with_fresh_attempts(tmp_path):
    journal = journal_with(tmp_path / "j.sqlite3", [segment(1)])
    record = journal.claim("w1", lease_seconds=LEASE)
    journal.retry_later(record.segment_id, "w1", delay=0, error="x")
    record = journal.claim("w1", lease_seconds=LEASE)
    journal.finish(record.segment_id, "w1", SegmentState.FAILED, error="gave up")
    assert journal.add_segments("e1", [segment(1)]) == 0  # kept failed without retry_failed
    assert journal.claim("w1", lease_seconds=LEASE) is None
    assert journal.add_segments("e1", [segment(1)], retry_failed=True) == 1
    again = journal.claim("w1", lease_seconds=LEASE)
    assert again.segment_id == record.segment_id and again.failures == 0 and again.error is None


def test_duplicate_deliveries_and_segments_are_kept_once(tmp_path):
    journal = journal_with(tmp_path / "j.sqlite3", [segment(1), segment(1)])
    assert not journal.record_event(event_id="e1", webhook_type="x", payload={}, source="t")
    assert journal.add_segments("e1", [segment(1)]) == 0
    assert len(journal.segments()) == 1 and len(journal.events()) == 1


def test_a_segment_held_by_a_process_that_died_is_resumed_at_once(tmp_path):
    path = tmp_path / "j.sqlite3"
    journal_with(path, [segment(1)]).close()
    # A real process claims with a long lease and is killed before it finishes.
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from pipeline.journal import SQLiteJournal, worker_name
        SQLiteJournal(Path({str(path)!r})).claim(worker_name(), lease_seconds=3600)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert died.returncode == -9, died.stderr.decode()
    journal = SQLiteJournal(path)
    (held,) = journal.segments()
    assert held.state is SegmentState.ACTIVE
    resumed = journal.claim("w-next", lease_seconds=LEASE)
    assert resumed is not None and resumed.segment_id == held.segment_id and resumed.attempts == 2


def _plan(db: sqlite3.Connection, sql: str) -> str:
    params = {"now": 0.0, "session": "s1", "done": "done", "failed": "failed"}
    rows = db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(row[-1] for row in rows)


def test_claim_reads_through_an_index_not_every_pending_row(tmp_path):
    path = tmp_path / "big.sqlite3"
    journal = journal_with(path, [segment(n, session=f"s{n % 50}") for n in range(20_000)])
    journal.close()
    db = sqlite3.connect(path)
    db.execute("ANALYZE")  # as a long-lived journal's statistics would be
    for sql in (CLAIM_PENDING, CLAIM_PENDING_IN_SESSION, CLAIM_ACTIVE, CLAIM_ACTIVE_IN_SESSION):
        plan = _plan(db, sql)
        assert "USING INDEX segments_" in plan, plan
        assert "SCAN segments" not in plan and "TEMP B-TREE" not in plan, plan
    db.close()
    journal = SQLiteJournal(path)
    assert journal.claim("w", lease_seconds=LEASE).segment_id == "seg000000"
    assert journal.claim("w", lease_seconds=LEASE, session_id="s7").segment_id == "seg000007"


def delivery(event_id: str, session: str, participant: str, stage: str = "started") -> NewEvent:
    return NewEvent(
        event_id=event_id,
        webhook_type=f"participant-track-recording-{stage}",
        payload_json="{}",
        source="t",
        session_id=session,
        participant_id=participant,
        kind="audio",
        segments=(),
    )


def test_finding_what_a_manifest_merge_lacks_reads_no_merged_history(tmp_path):
    path = tmp_path / "merged.sqlite3"
    journal = journal_with(path, [segment(n, session=f"s{n % 50}") for n in range(2_000)])
    for _ in range(2_000):
        claimed = journal.claim("w", lease_seconds=LEASE)
        journal.finish(claimed.segment_id, "w", SegmentState.DONE, result={})
    journal.record_events([delivery(f"ev{n}", f"s{n % 50}", f"p{n}") for n in range(2_000)])
    journal.mark_manifested(
        segment_ids=[s.segment_id for s in journal.segments()],
        event_ids=[e.event_id for e in journal.events()],
    )
    # The merged history stays in the journal; one new outcome and one new delivery follow.
    journal.add_segments("e1", [segment(9_999, session="s7")])
    claimed = journal.claim("w", lease_seconds=LEASE)
    journal.finish(claimed.segment_id, "w", SegmentState.FAILED, error="x")
    journal.record_events([delivery("late", "s9", "p", stage="stopped")])
    assert journal.unmanifested_sessions() == ["s7", "s9"]
    assert [s.segment_id for s in journal.unmanifested_segments("s7")] == ["seg009999"]
    assert [e.event_id for e in journal.unmanifested_events("s9")] == ["late"]
    assert journal.unmanifested_events("s7") == []
    journal.close()
    db = sqlite3.connect(path)
    db.execute("ANALYZE")  # as a long-lived journal's statistics would be
    for sql, index in (
        (UNMANIFESTED_SESSIONS, "events_unmanifested"),
        (UNMANIFESTED_SESSIONS, "segments_unmanifested"),
        (UNMANIFESTED_EVENTS, "events_unmanifested"),
        (UNMANIFESTED_SEGMENTS, "segments_unmanifested"),
    ):
        plan = _plan(db, sql)
        assert f"USING INDEX {index}" in plan, plan
        # Only the partial indexes, which hold no merged row, are read.
        assert "events_pending" not in plan and "segments_state" not in plan, plan
        assert "events_session" not in plan and "segments_session" not in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    db.close()


def test_a_journal_written_before_the_merge_indexes_gets_them_when_opened(tmp_path):
    path = tmp_path / "older.sqlite3"
    journal_with(path, [segment(1)]).close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX events_unmanifested")
    db.execute("DROP INDEX segments_unmanifested")
    db.commit()
    db.close()
    journal = SQLiteJournal(path)
    claimed = journal.claim("w", lease_seconds=LEASE)
    journal.finish(claimed.segment_id, "w", SegmentState.DONE, result={})
    assert journal.unmanifested_sessions() == ["s1"]
    assert [s.segment_id for s in journal.unmanifested_segments("s1")] == ["seg000001"]
    journal.close()


# The tables as the first release of the journal wrote them.
_SCHEMA_1 = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    webhook_type TEXT NOT NULL, session_id TEXT, participant_id TEXT, kind TEXT,
    payload TEXT NOT NULL, source TEXT NOT NULL, received_at TEXT NOT NULL,
    processed INTEGER NOT NULL DEFAULT 0, manifested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_pending ON events (processed, seq);
CREATE INDEX events_session ON events (session_id, seq);
CREATE TABLE segments (
    arrival INTEGER PRIMARY KEY AUTOINCREMENT, segment_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL, meeting_id TEXT, participant_id TEXT NOT NULL, kind TEXT NOT NULL,
    source_url TEXT NOT NULL, source_path TEXT, filename TEXT NOT NULL, key TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, owner TEXT, lease_until REAL,
    result TEXT, error TEXT, manifested INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL
);
CREATE INDEX segments_state ON segments (state, arrival);
CREATE INDEX segments_session ON segments (session_id, arrival);
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO events (event_id, webhook_type, session_id, payload, source, received_at, processed)
    VALUES ('e1', 'participant-track-recording-stopped', 's1', '{}', 'old.jsonl:1', '2026-01-01T00:00:00+00:00', 1);
"""


def _old_row(n: int, state: str, **extra: str) -> str:
    columns = {
        "segment_id": f"seg{n}",
        "session_id": "s1",
        "participant_id": "alice",
        "kind": "audio",
        "source_url": f"https://cdn.example/{n}.webm",
        "filename": f"{n}.webm",
        "key": f"s1/alice/audio/{n}.webm",
        "state": state,
        "updated_at": "2026-01-01T00:00:00+00:00",
        **extra,
    }
    names = ", ".join(columns)
    values = ", ".join(f"'{v}'" for v in columns.values())
    return f"INSERT INTO segments ({names}) VALUES ({values});"


def test_a_journal_of_the_first_schema_keeps_working(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        _SCHEMA_1
        + _old_row(1, "done", result='{"key": "s1/alice/audio/1.webm"}')
        + _old_row(2, "pending")
        + _old_row(3, "failed", error="verification failed")
    )
    db.close()
    journal = SQLiteJournal(path)
    states = {r.segment_id: (r.state, r.failures) for r in journal.segments()}
    assert states == {
        "seg1": (SegmentState.DONE, 0),
        "seg2": (SegmentState.PENDING, 0),
        "seg3": (SegmentState.FAILED, 0),
    }
    record = journal.claim("w", lease_seconds=LEASE)
    assert record.segment_id == "seg2"
    assert journal.retry_later("seg2", "w", delay=3600, error="x")
    assert journal.add_segments("e1", [], retry_failed=True) == 0
    journal.close()
    journal = SQLiteJournal(path)  # opening again changes nothing
    assert [r.segment_id for r in journal.segments(states=(SegmentState.PENDING,))] == ["seg2"]
    journal.close()
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone() == ("2",)


def test_a_journal_of_a_newer_schema_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "future.sqlite3"
    SQLiteJournal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match=r"future\.sqlite3.*schema 99.*upgrade track-archive"):
        SQLiteJournal(path)
