"""Copy mode: the recorded packets, laid on the session timeline, in one seekable file."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline.export import ExportRequest, export_session
from tests.export.conftest import FPS, SESSION
from tests.export.probe import facts, ffprobe, seek_lands

FRAME = 1 / FPS
AUDIO_FRAME = 0.02


@pytest.fixture(scope="module")
def copied(tmp_path_factory: pytest.TempPathFactory, session_files) -> dict:
    """Every pair exported once in copy mode on a local archive (shared: read-only)."""
    from storage_backends import BackendOptions, LocalOptions, open_backend
    from tests.export.conftest import archive_files

    root = tmp_path_factory.mktemp("copy-archive")
    with open_backend(root.as_uri(), BackendOptions(local=LocalOptions(fsync=False))) as backend:
        archive_files(backend, SESSION, session_files)
        report = export_session(backend, SESSION, ExportRequest(mode="copy"))
    assert report.ok, report.failures
    return {(f.participant_id, f.pair): root / f.key for f in report.files}


def test_one_file_per_participant_pair_in_the_sessions_exports_folder(copied: dict) -> None:
    assert set(copied) == {("alice", "camera"), ("alice", "screen"), ("bob", "camera")}
    for path in copied.values():
        assert path.parent.name == "%exports"
        assert path.suffix == ".mkv"


def test_streams_sit_at_their_timeline_positions_and_end_there(copied: dict) -> None:
    alice = facts(copied[("alice", "camera")], decode_video=True)
    assert alice["audio"].codec == "opus" and alice["video"].codec == "vp8"
    # Audio starts at time zero, video 700 ms later, both within 40 ms of the timeline.
    assert alice["audio"].start == pytest.approx(0.0, abs=0.04)
    assert alice["video"].start == pytest.approx(0.7, abs=0.04)
    # Ends: audio's last segment ends at 7.0, video's at 5.0 (within one frame).
    assert alice["audio"].end == pytest.approx(7.0, abs=AUDIO_FRAME + 0.01)
    assert alice["video"].end == pytest.approx(5.0, abs=FRAME)
    # Packets copied, not re-encoded: the resolution change is still there.
    assert alice["video"].sizes == {(160, 120), (320, 240)}


def test_gaps_are_kept_where_and_as_long_as_they_were(copied: dict) -> None:
    alice = facts(copied[("alice", "camera")])
    gaps = alice["audio"].gaps(longer_than=0.1)
    assert [start for start, _ in gaps] == pytest.approx([2.0, 4.0], abs=0.03)
    assert [length for _, length in gaps] == pytest.approx([1.0, 1.5], abs=0.03)
    video_gaps = alice["video"].gaps(longer_than=0.2)
    assert video_gaps == [pytest.approx((2.7, 1.0), abs=FRAME + 0.01)]


def test_screen_share_and_late_joiner_keep_their_places(copied: dict) -> None:
    screen = facts(copied[("alice", "screen")])
    assert screen["video"].start == pytest.approx(2.0, abs=0.04)
    assert screen["audio"].start == pytest.approx(2.0, abs=0.04)
    assert screen["video"].end == pytest.approx(4.0, abs=FRAME)
    bob = facts(copied[("bob", "camera")])
    for stream in ("audio", "video"):
        assert bob[stream].start == pytest.approx(4.0, abs=0.04)
        assert bob[stream].end == pytest.approx(7.0, abs=FRAME)


def test_copy_output_is_seekable_with_a_duration(copied: dict) -> None:
    path = copied[("alice", "camera")]
    probed = ffprobe(path)
    # The live-recorded sources have no duration; the export states one, to the timeline's end.
    assert float(probed["format"]["duration"]) == pytest.approx(7.0, abs=AUDIO_FRAME + 0.01)
    assert seek_lands(path, 4.3) == pytest.approx(4.3, abs=1.0)
    assert seek_lands(copied[("bob", "camera")], 5.5) == pytest.approx(5.5, abs=1.0)


def test_mp4_and_webm_refuse_codecs_they_cannot_hold_and_webm_copies(
    archived: Callable, tmp_path
) -> None:
    _, backend = archived("local")
    refused = export_session(backend, SESSION, ExportRequest(mode="copy", format="mp4", participants=("bob",)))
    assert not refused.ok
    assert "vp8 cannot be copied into mp4" in refused.failures[0].reason
    webm = export_session(backend, SESSION, ExportRequest(mode="copy", format="webm", participants=("bob",)))
    assert webm.ok and webm.files[0].key.endswith("bob.camera.copy.webm")


def test_mp4_segments_are_read_whole_and_copied_into_mp4(
    make_storage_target: Callable, tmp_path
) -> None:
    from datetime import timedelta

    from pipeline.media import synth
    from tests.export.conftest import T0, SegmentFile, archive_files

    # MP4 keeps its index at the end: the reader fetches the object (verifying it) first.
    files = []
    for kind, start, audio in (("audio", 0.0, True), ("video", 0.5, False)):
        at = T0 + timedelta(seconds=start)
        path = tmp_path / f"track_recording_dee_{kind}_{int(at.timestamp() * 1000)}.mp4"
        synth.make_mp4(path, 2.0, audio=audio, video=not audio, fps=FPS, started_at=at)
        files.append(SegmentFile("dee", kind, start, 2.0, path))
    with make_storage_target("s3").open() as backend:
        archive_files(backend, "mp4-session", files)
        report = export_session(backend, "mp4-session", ExportRequest(mode="copy", format="mp4"))
        assert report.ok, report.failures
        (exported,) = report.files
        local = tmp_path / "out.mp4"
        backend.get_file(exported.key, local)
    found = facts(local)
    assert (found["audio"].codec, found["video"].codec) == ("aac", "h264")
    assert found["video"].start == pytest.approx(0.5, abs=0.04)
    assert found["video"].end == pytest.approx(2.5, abs=FRAME)
