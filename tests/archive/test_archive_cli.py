"""End to end through the CLI, on every backend, against a real HTTP origin."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline.archive import segment_id
from pipeline.layout import manifest_key, segment_key
from pipeline.manifest import read_manifest
from pipeline.media import synth

from .conftest import serve_meeting, track_webhook, write_jsonl


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_segments_land_at_their_keys_with_an_ordered_manifest(
    meeting, origin, run_archive, archived, tmp_path
):
    bodies = serve_meeting(origin, meeting)
    run = run_archive(write_jsonl(tmp_path / "w.jsonl", bodies))
    assert run.exit_code == 0, run.result.output
    assert run.summary["archived"] == len(meeting.segments)
    assert run.summary["failed"] == 0

    for seg in meeting.segments:
        stat = archived.stat(
            segment_key(meeting.session_id, seg.participant_id, seg.kind, seg.filename)
        )
        assert stat is not None and stat.size == seg.path.stat().st_size
        assert stat.sha256 == _sha256(seg.path)

    manifest, _ = read_manifest(archived, meeting.session_id)
    assert manifest is not None and manifest.meetingId == meeting.meeting_id
    for (pid, kind), files in meeting.tracks().items():
        listed = manifest.participants[pid][kind]
        assert [s.filename for s in listed] == [f.filename for f in files]  # recording order
        assert manifest.summary[pid][kind].segmentCount == len(files)
        assert manifest.lifecycle[pid][kind].state == "stopped"
    # The original ID is kept beside the encoded key.
    carol = manifest.participants["carol/guest"]["audio"][0]
    assert carol.key.startswith(f"{meeting.session_id}/carol%2Fguest/audio/")
    assert all(s.durationSeconds and s.durationSeconds > 0.3 for _, _, s in manifest.segments())


def test_duplicates_failed_events_bad_lines_and_other_types(
    meeting, origin, run_archive, archived, tmp_path
):
    bodies = serve_meeting(origin, meeting)
    stopped = [b for b in bodies if b["webhookType"].endswith("-stopped")]
    source = tmp_path / "mixed.jsonl"
    lines = [json.dumps(b) for b in reversed(bodies)]  # out of order
    lines.insert(2, "{this is not json")
    lines.append(json.dumps(stopped[0]))  # a duplicate delivery
    lines.append(json.dumps({"webhookType": "recording-started", "data": {"meetingId": "m"}}))
    lines.append(json.dumps(track_webhook(meeting, "dave", "video", "failed")))
    bad_kind = track_webhook(meeting, "erin", "hologram", "started")
    lines.append(json.dumps(bad_kind))
    source.write_text("\n".join(lines) + "\n")

    run = run_archive(source)
    assert run.exit_code == 1  # the malformed records
    summary = run.summary
    assert summary["archived"] == len(meeting.segments)  # the duplicate archived once
    errors = summary["inputErrors"]
    assert any(f"{source}:3" in e and "not valid JSON" in e for e in errors)
    assert any("data.kind" in e for e in errors)
    assert summary["ignoredEvents"] and "recording-started" in summary["ignoredEvents"][0]
    hits = {seg.file_path: origin.hits(seg.file_path) for seg in meeting.segments}
    assert set(hits.values()) == {1}  # every file fetched exactly once

    manifest, _ = read_manifest(archived, meeting.session_id)
    assert any(f.participantId == "dave" and f.kind == "video" for f in manifest.failures)
    assert manifest.lifecycle["dave"]["video"].state == "failed"


def test_a_second_run_downloads_nothing(meeting, origin, run_archive, tmp_path):
    source = write_jsonl(tmp_path / "w.jsonl", serve_meeting(origin, meeting))
    assert run_archive(source).exit_code == 0
    before = len(origin.requests)
    again = run_archive(source)
    assert again.exit_code == 0
    assert again.summary["skipped"] == len(meeting.segments) and again.summary["archived"] == 0
    assert len(origin.requests) == before


def test_unsafe_ids_are_encoded_and_overlong_ones_refused(
    meeting, origin, run_archive, archived, tmp_path
):
    seg = meeting.segments[0]
    origin.add(seg.file_path, seg.path)
    files = [{"filePath": seg.file_path, "fileUrl": origin.url_for(seg.file_path)}]
    dotdot = track_webhook(meeting, "..", "audio", "stopped", files)
    sneaky = track_webhook(meeting, "a\\b\x01", "audio", "stopped", files)
    overlong = track_webhook(meeting, "x" * 300, "audio", "stopped", files)
    run = run_archive(write_jsonl(tmp_path / "w.jsonl", [dotdot, sneaky, overlong]))
    assert run.exit_code == 1
    assert any("participantId is too long" in e for e in run.summary["inputErrors"])
    assert run.summary["archived"] == 2
    keys = [s.key for s in archived.list()]
    assert f"{meeting.session_id}/a%5Cb%01/audio/{seg.filename}" in keys
    assert f"{meeting.session_id}/%2E./audio/{seg.filename}" in keys
    assert not any("/../" in k for k in keys)


def test_a_file_failing_verification_goes_to_quarantine_not_the_archive(
    meeting, origin, run_archive, archived, tmp_path
):
    bodies = serve_meeting(origin, meeting)
    audio = next(s for s in meeting.segments if s.kind == "audio")
    video = next(s for s in meeting.segments if s.kind == "video")
    # A video file delivered where the service says audio, and a cut file.
    origin.add(audio.file_path, video.path)
    cut = synth.truncate(audio.path, tmp_path / "cut.webm", fraction=0.5)
    bob = next(s for s in meeting.segments if s.participant_id == "bob")
    origin.add(bob.file_path, cut)

    run = run_archive(write_jsonl(tmp_path / "w.jsonl", bodies), state=tmp_path / "state")
    assert run.exit_code == 1
    assert run.summary["failed"] == 2
    assert run.summary["archived"] == len(meeting.segments) - 2
    for bad in (audio, bob):
        key = segment_key(meeting.session_id, bad.participant_id, bad.kind, bad.filename)
        assert archived.stat(key) is None
        sid = segment_id(key, origin.url_for(bad.file_path))
        kept = tmp_path / "state" / "quarantine" / f"{sid}.bytes"
        assert kept.read_bytes() == (video.path if bad is audio else cut).read_bytes()
        assert json.loads(kept.with_suffix(".reason.json").read_text())["key"] == key
    reasons = {f["sourceUrl"].rsplit("/", 1)[-1]: f["reason"] for f in run.summary["failures"]}
    assert "kind" in reasons[audio.filename]
    manifest, _ = read_manifest(archived, meeting.session_id)
    assert {f.sourceUrl for f in manifest.failures} == {
        origin.url_for(audio.file_path),
        origin.url_for(bob.file_path),
    }


def test_different_content_at_a_key_is_kept_and_reported(
    meeting, origin, run_archive, archived, tmp_path
):
    bodies = serve_meeting(origin, meeting)
    seg = meeting.segments[0]
    key = segment_key(meeting.session_id, seg.participant_id, seg.kind, seg.filename)
    other = meeting.segments[1].path
    archived.put_file(key, other, crc32c=_crc(other), sha256=_sha256(other))

    run = run_archive(write_jsonl(tmp_path / "w.jsonl", bodies))
    assert run.exit_code == 0
    assert run.summary["conflicts"][0]["key"] == key
    assert archived.stat(key).sha256 == _sha256(other)  # never overwritten
    stored_at = run.summary["conflicts"][0]["storedAt"]
    assert archived.stat(stored_at).sha256 == _sha256(seg.path)
    manifest, _ = read_manifest(archived, meeting.session_id)
    assert any(s.key == stored_at and s.conflictWith == key for _, _, s in manifest.segments())


def test_manifest_key_is_beside_the_session(meeting, origin, run_archive, archived, tmp_path):
    run_archive(write_jsonl(tmp_path / "w.jsonl", serve_meeting(origin, meeting)))
    assert archived.stat(manifest_key(meeting.session_id)) is not None


def _crc(path):
    from storage_backends.checksums import hash_file

    return hash_file(path)[0]


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_manifest_show_prints_the_session(meeting, origin, run_archive, target, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    run_archive(write_jsonl(tmp_path / "w.jsonl", serve_meeting(origin, meeting)))
    shown = CliRunner().invoke(
        main, ["manifest", "show", meeting.session_id, "--backend", target.url, "--json"]
    )
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["sessionId"] == meeting.session_id
    missing = CliRunner().invoke(main, ["manifest", "show", "nope", "--backend", target.url])
    assert missing.exit_code == 1 and "no manifest" in missing.output


def test_summaries_print_ids_and_urls_as_they_are_never_as_markup(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    # Both come from the webhook: "[/i]" once stopped the printing with rich's
    # MarkupError (a traceback after the run), and "[b]" restyled the text.
    body = {
        "webhookType": "participant-track-recording-stopped",
        "data": {
            "meetingId": "m",
            "sessionId": "s",
            "participantId": "p[/i][b]",
            "kind": "audio",
            "fileDetails": [{"fileUrl": "https://example.invalid/a[/b].webm"}],
        },
    }
    hooks = write_jsonl(tmp_path / "w.jsonl", [body])
    archive = tmp_path / "archive"
    run = CliRunner().invoke(main, ["archive", str(hooks), "--backend", str(archive)])
    assert run.exit_code == 1, run.output  # refused: not an allowed origin
    assert "failed s/p[/i][b]/audio https://example.invalid/a[/b].webm: refused" in run.stdout
    shown = CliRunner().invoke(main, ["manifest", "show", "s", "--backend", str(archive)])
    assert shown.exit_code == 0, shown.output
    assert "p[/i][b]" in shown.stdout
    assert "failure p[/i][b]/audio https://example.invalid/a[/b].webm: refused" in shown.stdout
