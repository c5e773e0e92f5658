"""A bad segment fails its participant's export, names itself, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.export import ExportRequest, export_session
from pipeline.layout import export_prefix
from pipeline.manifest import read_manifest
from storage_backends import Backend
from tests.export.conftest import SESSION

BOB_VIDEO = "track_recording_bob_video_1772618404000.webm"


def _bob_video_key(backend: Backend) -> str:
    manifest, _ = read_manifest(backend, SESSION)
    assert manifest is not None
    return manifest.participants["bob"]["video"][0].key


def _flip_bytes(backend: Backend, key: str) -> None:
    """Change bytes inside the media, size kept: the demuxer still reads it, the checksum cannot.

    The stored object is rewritten through the backend (an unconditional put), as
    bit rot or a stray writer would leave it; the manifest keeps the original SHA-256.
    """
    data, _ = backend.get_bytes(key)
    middle = len(data) // 2
    backend.put_bytes(key, data[:middle] + bytes(b ^ 0x55 for b in data[middle : middle + 64]) + data[middle + 64 :])


def _exported_keys(backend: Backend) -> list[str]:
    return sorted(s.key for s in backend.list(export_prefix(SESSION)))


@pytest.mark.parametrize("kind", ["local", "s3", "gcs"])
def test_a_corrupted_segment_fails_only_its_participant_and_leaves_nothing(
    archived: Callable, kind: str
) -> None:
    _, backend = archived(kind)
    bad = _bob_video_key(backend)
    _flip_bytes(backend, bad)
    report = export_session(backend, SESSION, ExportRequest(mode="copy"))
    assert not report.ok
    (failure,) = report.failures
    assert (failure.participant_id, failure.pair, failure.segment_key) == ("bob", "camera", bad)
    assert bad in failure.reason and "SHA-256" in failure.reason
    # Alice still exported; nothing of bob's, not even a temporary file, at the destination.
    assert _exported_keys(backend) == [
        f"{SESSION}/%exports/alice.camera.copy.mkv",
        f"{SESSION}/%exports/alice.screen.copy.mkv",
    ]
    manifest, _ = read_manifest(backend, SESSION)
    assert manifest is not None
    assert [e.participantId for e in manifest.exports] == ["alice", "alice"]


def test_an_undecodable_segment_is_named_and_normalize_leaves_nothing(archived: Callable) -> None:
    _, backend = archived("local")
    bad = _bob_video_key(backend)
    backend.put_bytes(bad, b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8)
    report = export_session(backend, SESSION, ExportRequest(mode="normalize", participants=("bob",)))
    (failure,) = report.failures
    assert failure.segment_key == bad
    assert "cannot be read as media" in failure.reason
    assert _exported_keys(backend) == []


def test_cli_exit_codes_json_and_message(archived: Callable) -> None:
    target, backend = archived("local")
    bad = _bob_video_key(backend)
    _flip_bytes(backend, bad)
    runner = CliRunner()
    result = runner.invoke(main, ["export", SESSION, "--backend", target.url, "--json"])
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert [f["participantId"] for f in document["written"]] == ["alice", "alice"]
    assert document["failed"][0]["segmentKey"] == bad
    # Without --json the failure is one clear line naming the segment, no traceback.
    result = runner.invoke(main, ["export", SESSION, "--backend", target.url, "--participant", "bob"])
    assert result.exit_code == 1
    assert bad in result.output and "Traceback" not in result.output
    # Usage errors exit 2; a session the archive lacks exits 1.
    result = runner.invoke(main, ["export", SESSION, "--backend", target.url, "--participant", "zed"])
    assert result.exit_code == 2 and "no participant 'zed'" in result.output
    result = runner.invoke(main, ["export", "nope", "--backend", target.url])
    assert result.exit_code == 1 and "no manifest for session 'nope'" in result.output


def test_normalize_verifies_every_segment_even_audio_past_the_sessions_end(
    archived: Callable,
) -> None:
    # The last microphone segment ends the session; its final packets may lie past the
    # last output frame, and must still be read so its checksum is checked.
    _, backend = archived("local")
    manifest, _ = read_manifest(backend, SESSION)
    assert manifest is not None
    last = manifest.participants["alice"]["audio"][-1].key
    _flip_bytes(backend, last)
    report = export_session(backend, SESSION, ExportRequest(mode="normalize", participants=("alice",), kinds=("audio",), mix=True))
    assert {(f.participant_id, f.pair, f.segment_key) for f in report.failures} == {
        ("alice", "camera", last),
        (None, "mix", last),
    }
    assert _exported_keys(backend) == []


def test_an_unusable_scratch_directory_is_a_clear_error(archived: Callable, tmp_path) -> None:
    from pipeline.export import ExportWriteFailed

    _, backend = archived("local")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(ExportWriteFailed, match="cannot make a scratch directory"):
        export_session(backend, SESSION, ExportRequest(), temp_dir=not_a_dir)
    assert _exported_keys(backend) == []


def test_a_killed_export_s_scratch_is_removed_and_none_is_left(archived: Callable, tmp_path) -> None:
    _, backend = archived("s3")  # segments are spooled from the bucket into the scratch
    temp = tmp_path / "temp"
    # What an export SIGKILLed mid-write leaves (tests/pipeline/test_scratch.py kills a
    # real process): its directory, the lock in it free, a spooled segment, a half file.
    killed = temp / ".scratch-export-killed"
    killed.mkdir(parents=True)
    (killed / "lock").touch()
    (killed / ".export-abc.seg").write_bytes(b"spooled")
    (killed / "alice.camera.mkv").write_bytes(b"half an export")
    os.utime(killed, (time.time() - 3600,) * 2)
    report = export_session(backend, SESSION, ExportRequest(participants=("alice",)), temp_dir=temp)
    assert report.files and not report.failures
    assert list(temp.iterdir()) == []
