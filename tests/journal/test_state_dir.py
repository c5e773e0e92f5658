"""Each journal owns its staging and quarantine: runs with different ``--state`` never meet."""

from __future__ import annotations

import hashlib
import json

from pipeline.layout import segment_key
from pipeline.manifest import read_manifest
from pipeline.standin import stopped_webhooks

from .conftest import archive_command, start, write_config


def _serve_slowly(origin, meeting):
    for seg in meeting.segments:
        # Slow enough that both runs are downloading the same segments at the same moment.
        origin.add(seg.file_path, seg.path, drip=(200, 0.02))
    return stopped_webhooks(meeting, origin.base_url)


def _assert_whole(archive, meeting):
    expected = {
        segment_key(meeting.session_id, s.participant_id, s.kind, s.filename): s
        for s in meeting.segments
    }
    for key, seg in expected.items():
        assert archive.stat(key).sha256 == hashlib.sha256(seg.path.read_bytes()).hexdigest()
    manifest, _ = read_manifest(archive, meeting.session_id)
    assert sorted(s.key for _, _, s in manifest.segments()) == sorted(expected)


def test_two_runs_with_different_state_in_one_directory_do_not_share_staging(
    journal_meeting, origin, local_target, local_archive, tmp_path
):
    bodies = _serve_slowly(origin, journal_meeting)
    source = tmp_path / "w.jsonl"
    source.write_text("".join(json.dumps(b) + "\n" for b in bodies), encoding="utf-8")
    config = write_config(tmp_path / "config.yaml", local_target)
    runs = [
        start(
            archive_command(config, origin.base_url, source, "--state", f"run{n}.sqlite3", *extra),
            tmp_path,
        )
        # Different concurrency: the runs reach each segment at different moments.
        for n, extra in ((1, ("--concurrency", "1")), (2, ()))
    ]
    for process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        summary = json.loads(out)
        assert summary["failed"] == 0 and not summary["failures"]
        assert b"Traceback" not in err, err.decode()
    _assert_whole(local_archive, journal_meeting)
    # Each journal keeps its working files beside it, and left none behind.
    for n in (1, 2):
        state = tmp_path / f"run{n}.sqlite3.d"
        assert state.is_dir()
        assert not list((state / "staging").glob("*"))


def test_two_runs_on_one_journal_share_it_and_fetch_each_segment_once(
    journal_meeting, origin, local_target, local_archive, tmp_path
):
    bodies = _serve_slowly(origin, journal_meeting)
    source = tmp_path / "w.jsonl"
    source.write_text("".join(json.dumps(b) + "\n" for b in bodies), encoding="utf-8")
    config = write_config(tmp_path / "config.yaml", local_target)
    runs = [
        start(
            archive_command(config, origin.base_url, source, "--state", "shared.sqlite3", *extra),
            tmp_path,
        )
        for extra in (("--concurrency", "1"), ())
    ]
    for process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        assert json.loads(out)["failed"] == 0
    _assert_whole(local_archive, journal_meeting)
    # Leases give each segment to one run: nothing is downloaded twice.
    assert all(origin.hits(seg.file_path) == 1 for seg in journal_meeting.segments)
    assert not list((tmp_path / "shared.sqlite3.d" / "staging").glob("*"))
