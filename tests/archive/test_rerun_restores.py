"""A run again over the same webhooks restores what vanished from the archive since.

The journal remembers what was archived; the archive is what counts. A
segment whose object is gone is fetched again, and a manifest deleted (or an
entry cut from it by hand) gets its entries back, on every backend.
"""

from __future__ import annotations

import pytest

from pipeline.layout import manifest_key, segment_key
from pipeline.manifest import read_manifest
from storage_backends import Backend

from .conftest import serve_meeting, write_jsonl


def _listed_keys(archived: Backend, session_id: str) -> set[str]:
    manifest, _ = read_manifest(archived, session_id)
    assert manifest is not None
    return {seg.key for _, _, seg in manifest.segments()}


def _all_keys(meeting) -> set[str]:
    return {
        segment_key(meeting.session_id, seg.participant_id, seg.kind, seg.filename)
        for seg in meeting.segments
    }


def test_an_object_deleted_after_archiving_is_fetched_again(
    meeting, origin, run_archive, archived, tmp_path
):
    source = write_jsonl(tmp_path / "w.jsonl", serve_meeting(origin, meeting))
    assert run_archive(source).exit_code == 0
    lost = meeting.segments[0]
    key = segment_key(meeting.session_id, lost.participant_id, lost.kind, lost.filename)
    archived.delete(key)

    again = run_archive(source)

    assert again.exit_code == 0, again.result.output
    assert (again.summary["archived"], again.summary["skipped"]) == (1, len(meeting.segments) - 1)
    stat = archived.stat(key)
    assert stat is not None and stat.size == lost.path.stat().st_size
    assert _listed_keys(archived, meeting.session_id) == _all_keys(meeting)


@pytest.mark.parametrize("damage", ["deleted", "entry removed"])
def test_a_manifest_that_lost_entries_gets_them_back(
    damage, meeting, origin, run_archive, archived, tmp_path
):
    source = write_jsonl(tmp_path / "w.jsonl", serve_meeting(origin, meeting))
    assert run_archive(source).exit_code == 0
    key = manifest_key(meeting.session_id)
    if damage == "deleted":
        archived.delete(key)  # what a user does with a manifest the tool reported unreadable
    else:
        manifest, _ = read_manifest(archived, meeting.session_id)
        assert manifest is not None
        del manifest.participants[meeting.segments[0].participant_id]
        archived.delete(key)
        archived.put_bytes(key, manifest.to_json())
    requests = len(origin.requests)

    again = run_archive(source)

    assert again.exit_code == 0, again.result.output
    assert again.summary["skipped"] == len(meeting.segments)
    assert len(origin.requests) == requests  # the objects are there: nothing fetched
    assert _listed_keys(archived, meeting.session_id) == _all_keys(meeting)
    manifest, _ = read_manifest(archived, meeting.session_id)
    assert manifest is not None and manifest.meetingId == meeting.meeting_id


def test_a_rerun_looks_up_each_session_once_not_each_segment(
    meeting, origin, run_archive, archived, tmp_path
):
    from pipeline.archive import recheck_done
    from pipeline.journal import SegmentState
    from pipeline.journal.sqlite import SQLiteJournal
    from tests.sync.builders import ProxyBackend

    source = write_jsonl(tmp_path / "w.jsonl", serve_meeting(origin, meeting))
    assert run_archive(source).exit_code == 0
    journal = SQLiteJournal(tmp_path / "state" / "journal.sqlite3")
    try:
        done = journal.segments(states=(SegmentState.DONE,))
        assert len(done) == len(meeting.segments) > 1
        counted = ProxyBackend(archived)
        found = recheck_done(counted, journal, [r.segment_id for r in done])
    finally:
        journal.close()
    assert (found.requeued, found.remerged) == ([], [])
    # One listing for the one session (a bucket answers up to 1,000 keys per request)
    # and no lookup per segment: at most the manifest read's own.
    assert counted.calls.get("list") == 1
    assert counted.calls.get("stat", 0) <= 1 < len(done)
