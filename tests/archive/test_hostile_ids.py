"""IDs a participant's client app can choose: they never collide with the tool's own files,
and one session whose manifest cannot be written never stops the others."""

from __future__ import annotations

from typing import Any

from pipeline.layout import manifest_key, segment_key
from pipeline.manifest import read_manifest
from tests.archive.conftest import serve_meeting, track_webhook, write_jsonl

BROKEN = "0-session-with-a-broken-manifest"  # sorts first: flushed before the others


def _in_session(body: dict[str, Any], session_id: str, participant_id: str) -> dict[str, Any]:
    return {
        **body,
        "data": {**body["data"], "sessionId": session_id, "participantId": participant_id},
    }


def test_hostile_ids_are_archived_and_a_broken_manifest_stops_only_its_session(
    meeting, origin, run_archive, archived, tmp_path
):
    bodies = serve_meeting(origin, meeting)
    seg = meeting.segments[0]
    files = [{"filePath": seg.file_path, "fileUrl": origin.url_for(seg.file_path)}]
    stopped = track_webhook(meeting, "alice", "audio", "stopped", files)
    hostile = [
        # A participant named like the manifest would make <session>/manifest.json a folder.
        track_webhook(meeting, "manifest.json", "audio", "stopped", files),
        # A participant named like the session's exports folder.
        track_webhook(meeting, "%exports", "audio", "stopped", files),
        # A session in the storage layer's own name space (its locks and temp files).
        _in_session(stopped, ".track-archive-locks", "alice"),
        _in_session(stopped, "@exports", "Manifest.JSON"),
    ]
    # A manifest someone edited by hand into something that is not a manifest.
    archived.put_bytes(manifest_key(BROKEN), b"not a manifest")
    broken = _in_session(stopped, BROKEN, "alice")

    run = run_archive(write_jsonl(tmp_path / "w.jsonl", [broken, *hostile, *bodies]))

    assert run.exit_code == 1
    failures = run.summary["manifestFailures"]
    assert [f["sessionId"] for f in failures] == [BROKEN]
    assert "not a valid manifest" in failures[0]["reason"]
    assert run.summary["failed"] == 0 and run.summary["inputErrors"] == []
    # Every other session's manifest is written, hostile IDs included.
    manifest, _ = read_manifest(archived, meeting.session_id)
    assert manifest is not None
    assert set(manifest.participants) == {p for p, _, _ in _tracks(meeting)} | {
        "manifest.json",
        "%exports",
    }
    for session, participant in ((".track-archive-locks", "alice"), ("@exports", "Manifest.JSON")):
        other, _ = read_manifest(archived, session)
        assert other is not None and participant in other.participants
        assert archived.stat(segment_key(session, participant, "audio", seg.filename))

    # Once the manifest is repaired, the next run writes it.
    archived.delete(manifest_key(BROKEN))
    again = run_archive(write_jsonl(tmp_path / "w.jsonl", [broken]))
    assert again.exit_code == 0 and again.summary["manifestFailures"] == []
    repaired, _ = read_manifest(archived, BROKEN)
    assert repaired is not None and "alice" in repaired.participants


def _tracks(meeting) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    return [(s.participant_id, s.kind, 0) for s in meeting.segments]
