"""Normalize mode and the mix: files an editor and a transcriber accept, all on one clock."""

from __future__ import annotations

import pytest

from pipeline.export import ExportRequest, export_session
from tests.export.conftest import FPS, SESSION, SESSION_SECONDS
from tests.export.probe import audio_level, facts, ffprobe, video_luma

FRAME = 1 / FPS
AAC_PRIMING = 1024 / 48000


@pytest.fixture(scope="module")
def normalized(tmp_path_factory: pytest.TempPathFactory, session_files) -> dict:
    """Every pair exported once in normalize mode (MP4) plus the mix, on a local archive."""
    from storage_backends import BackendOptions, LocalOptions, open_backend
    from tests.export.conftest import archive_files

    root = tmp_path_factory.mktemp("normalize-archive")
    with open_backend(root.as_uri(), BackendOptions(local=LocalOptions(fsync=False))) as backend:
        archive_files(backend, SESSION, session_files)
        report = export_session(backend, SESSION, ExportRequest(mode="normalize", mix=True))
    assert report.ok, report.failures
    return {(f.participant_id, f.pair): root / f.key for f in report.files}


def test_h264_and_aac_in_mp4_by_default(normalized: dict) -> None:
    path = normalized[("alice", "camera")]
    assert path.name == "alice.camera.normalize.mp4"
    probed = ffprobe(path)
    assert {s["codec_name"] for s in probed["streams"]} == {"h264", "aac"}


@pytest.mark.parametrize("who", [("alice", "camera"), ("alice", "screen"), ("bob", "camera")])
def test_every_file_spans_the_session_from_time_zero_with_av_aligned(normalized: dict, who) -> None:
    found = facts(normalized[who])
    # AAC's first packet holds encoder priming (1024 samples) that the MP4 edit list
    # hides; players, and ffprobe below, start the audio at exactly zero.
    assert found["audio"].start == pytest.approx(0.0, abs=AAC_PRIMING + 0.001)
    assert found["video"].start == pytest.approx(0.0, abs=0.001)
    for stream in ("audio", "video"):
        assert found[stream].end == pytest.approx(SESSION_SECONDS, abs=FRAME)
    assert abs(found["audio"].end - found["video"].end) <= 0.04
    probed = ffprobe(normalized[who])
    for stream in probed["streams"]:
        assert float(stream["start_time"]) == pytest.approx(0.0, abs=0.001)
    assert float(probed["format"]["start_time"]) == pytest.approx(0.0, abs=0.001)
    assert float(probed["format"]["duration"]) == pytest.approx(SESSION_SECONDS, abs=FRAME)


def test_constant_frame_rate_and_one_resolution_the_largest_seen(normalized: dict) -> None:
    found = facts(normalized[("alice", "camera")], decode_video=True)
    video = found["video"]
    steps = {round(b - a, 4) for a, b in zip(video.times, video.times[1:], strict=False)}
    assert steps == {round(FRAME, 4)}
    assert video.sizes == {(320, 240)}
    assert len(video.times) == pytest.approx(SESSION_SECONDS * FPS, abs=1)
    probed = ffprobe(normalized[("alice", "camera")])
    (stream,) = [s for s in probed["streams"] if s["codec_type"] == "video"]
    assert stream["r_frame_rate"] == stream["avg_frame_rate"] == f"{FPS}/1"


def test_gaps_are_filled_with_silence_and_black_at_their_place(normalized: dict) -> None:
    path = normalized[("alice", "camera")]
    # Microphone gaps [2, 3) and [4, 5.5): silent; the tone plays either side.
    assert audio_level(path, 2.1, 2.9) < 0.01
    assert audio_level(path, 4.1, 5.4) < 0.01
    assert audio_level(path, 0.5, 1.5) > 0.1
    assert audio_level(path, 3.1, 3.9) > 0.1
    # Camera: black before it starts (0.7 s) and in its gap [2.7, 3.7), picture inside.
    assert video_luma(path, 0.3) < 20
    assert video_luma(path, 3.2) < 20
    assert video_luma(path, 1.5) > 40
    assert video_luma(path, 6.0) < 20
    # The late joiner is silent and black until 4 s.
    bob = normalized[("bob", "camera")]
    assert audio_level(bob, 0.0, 3.9) < 0.01 and audio_level(bob, 4.2, 6.8) > 0.1
    assert video_luma(bob, 2.0) < 20 and video_luma(bob, 5.0) > 40


def test_the_mix_is_as_long_as_the_session_and_holds_everyone(normalized: dict) -> None:
    path = normalized[(None, "mix")]
    assert path.name == "mix.m4a"
    found = facts(path)
    assert set(found) == {"audio"}
    assert found["audio"].start == pytest.approx(0.0, abs=AAC_PRIMING + 0.001)
    assert found["audio"].end == pytest.approx(SESSION_SECONDS, abs=0.03)
    assert float(ffprobe(path)["format"]["duration"]) == pytest.approx(SESSION_SECONDS, abs=0.03)
    # Alice's microphone, her screen share's audio, bob: each is heard where it played.
    assert audio_level(path, 0.5, 1.5) > 0.1
    assert audio_level(path, 2.2, 2.8) > 0.1  # the screen share's audio
    assert audio_level(path, 4.6, 5.4) > 0.1  # bob


def test_webm_on_request_is_vp8_and_opus(archived) -> None:
    _, backend = archived("local")
    report = export_session(
        backend, SESSION, ExportRequest(mode="normalize", format="webm", participants=("bob",))
    )
    assert report.ok, report.failures
    (exported,) = report.files
    assert exported.key.endswith("bob.camera.normalize.webm")


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_on_s3_and_gcs_exports_are_read_and_written_through_the_backend_with_the_same_timeline(
    archived, tmp_path, kind: str
) -> None:
    _, backend = archived(kind)
    for mode in ("copy", "normalize"):
        report = export_session(backend, SESSION, ExportRequest(mode=mode, participants=("bob",)))
        assert report.ok, report.failures
        (exported,) = report.files
        stat = backend.stat(exported.key)
        assert stat is not None and stat.sha256 == exported.sha256
        local = tmp_path / exported.key.rsplit("/", 1)[-1]
        backend.get_file(exported.key, local)
        found = facts(local)
        expected_start = 4.0 if mode == "copy" else 0.0
        assert found["video"].start == pytest.approx(expected_start, abs=0.04)
        assert found["video"].end == pytest.approx(SESSION_SECONDS, abs=FRAME)
