"""The receiver's periodic manifest flush: a session that cannot be written is reported once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pipeline.archive.manifests import ManifestFlusher
from pipeline.journal import SQLiteJournal
from pipeline.layout import manifest_key
from pipeline.manifest import read_manifest
from storage_backends import Backend


def _started(journal: SQLiteJournal, session_id: str) -> None:
    """A processed ``-started`` delivery: lifecycle the session's manifest must record."""
    body = {
        "webhookType": "participant-track-recording-started",
        "data": {"meetingId": "m", "sessionId": session_id, "participantId": "p", "kind": "audio"},
    }
    event_id = f"started-{session_id}"
    journal.record_event(
        event_id=event_id,
        webhook_type=body["webhookType"],
        payload=body,
        source="test",
        session_id=session_id,
        participant_id="p",
        kind="audio",
    )
    journal.add_segments(event_id, [])


def test_a_session_that_keeps_failing_is_reported_once_and_the_others_written(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = SQLiteJournal(tmp_path / "journal.sqlite3")
    try:
        for session in ("a-broken", "b-good"):
            _started(journal, session)
        backend.put_bytes(manifest_key("a-broken"), b"{not json")
        flusher = ManifestFlusher(backend, journal)

        with caplog.at_level(logging.INFO, logger="pipeline.archive.manifests"):
            reports = [flusher.flush() for _ in range(5)]  # the receiver flushes every second

        assert all(set(r.failed) == {"a-broken"} for r in reports)
        assert set(reports[0].written) == {"b-good"}
        assert read_manifest(backend, "b-good")[0] is not None
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "a-broken" in errors[0].getMessage()
        assert errors[0].exc_info is None  # one line naming the key, no traceback

        backend.delete(manifest_key("a-broken"))
        assert flusher.flush().failed  # still pausing before the next try
        repaired = flusher.flush(retry_now=True)
        assert set(repaired.written) == {"a-broken"} and not repaired.failed
    finally:
        journal.close()
