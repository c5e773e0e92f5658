"""The quarantine: names that fit any file system, one copy per segment, a size budget."""

from __future__ import annotations

import json
import os

from pipeline.archive.quarantine import Quarantine
from pipeline.standin import track_webhook

from .conftest import archive_command, start, write_config


def _bad_long_named_segment(origin, meeting, tmp_path):
    """A 230-byte file name (the longest the layout takes) whose bytes are not what was announced."""
    audio = next(s for s in meeting.segments if s.kind == "audio")
    video = next(s for s in meeting.segments if s.kind == "video")
    name = "n" * 225 + ".webm"
    path = f"/individual-recordings/{meeting.session_id}/alice/audio/{name}"
    origin.add(path, video.path)  # video where the service says audio: refused
    good = f"/individual-recordings/{meeting.session_id}/alice/audio/{audio.filename}"
    origin.add(good, audio.path)
    files = [
        {"filePath": path, "fileUrl": origin.url_for(path)},
        {"filePath": good, "fileUrl": origin.url_for(good)},
    ]
    source = tmp_path / "w.jsonl"
    body = track_webhook(meeting, "alice", "audio", "stopped", files)
    source.write_text(json.dumps(body) + "\n", encoding="utf-8")
    return source, video.path.read_bytes()


def test_a_long_named_segment_failing_twice_leaves_one_quarantined_copy(
    journal_meeting, origin, local_target, tmp_path
):
    source, bad_bytes = _bad_long_named_segment(origin, journal_meeting, tmp_path)
    config = write_config(tmp_path / "config.yaml", local_target)
    for _ in range(2):  # the second run queues the failed segment again
        process = start(archive_command(config, origin.base_url, source), tmp_path)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, err.decode()
        assert b"Traceback" not in err, err.decode()
        summary = json.loads(out)
        assert summary["failed"] == 1 and "kind" in summary["failures"][0]["reason"]
    quarantine = tmp_path / ".track-archive" / "journal.sqlite3.d" / "quarantine"
    names = sorted(p.name for p in quarantine.iterdir())
    assert len(names) == 2 and all(len(n.encode()) <= 255 for n in names)
    kept = next(p for p in quarantine.iterdir() if p.name.endswith(".bytes"))
    assert kept.read_bytes() == bad_bytes
    reason = json.loads(kept.with_suffix(".reason.json").read_text())
    assert reason["key"].endswith("n" * 225 + ".webm") and reason["staged_bytes"] == str(kept)


def test_a_quarantine_budget_of_zero_keeps_reasons_only(
    journal_meeting, origin, local_target, tmp_path
):
    source, _ = _bad_long_named_segment(origin, journal_meeting, tmp_path)
    config = write_config(tmp_path / "config.yaml", local_target, state={"quarantine_max_bytes": 0})
    process = start(archive_command(config, origin.base_url, source), tmp_path)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err.decode()
    quarantine = tmp_path / ".track-archive" / "journal.sqlite3.d" / "quarantine"
    (reason,) = quarantine.iterdir()
    document = json.loads(reason.read_text())
    assert document["staged_bytes"] is None and "quarantine_max_bytes" in document["bytes_dropped"]
    assert not list((tmp_path / ".track-archive" / "journal.sqlite3.d" / "staging").iterdir())


def _staged(tmp_path, name, size):
    path = tmp_path / name
    path.write_bytes(b"x" * size)
    return path


def test_the_oldest_copies_make_room_and_a_copy_over_the_budget_is_not_kept(tmp_path):
    quarantine = Quarantine(tmp_path / "q", max_bytes=10)
    first = quarantine.keep("a" * 32, _staged(tmp_path, "1", 6), {"error": "one"})
    os.utime(first, (1, 1))  # clearly the oldest
    second = quarantine.keep("b" * 32, _staged(tmp_path, "2", 6), {"error": "two"})
    assert not first.exists() and second is not None and second.exists()
    assert quarantine.reason_path("a" * 32).exists()  # the reason outlives the bytes
    assert quarantine.keep("c" * 32, _staged(tmp_path, "3", 11), {"error": "three"}) is None
    assert second.exists()
    assert json.loads(quarantine.reason_path("c" * 32).read_text())["staged_bytes"] is None
    # A new failure of a segment replaces its copy and its reason.
    again = quarantine.keep("b" * 32, _staged(tmp_path, "4", 3), {"error": "two again"})
    assert again == second and again.stat().st_size == 3
    assert json.loads(quarantine.reason_path("b" * 32).read_text())["error"] == "two again"
