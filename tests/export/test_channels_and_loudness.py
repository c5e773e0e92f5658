"""Normalize keeps a track's channels apart; the mix stays within full scale however loud the voices."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.export import ExportRequest, export_session
from pipeline.media import synth
from storage_backends import Backend, BackendOptions, LocalOptions, open_backend
from tests.export.conftest import T0, SegmentFile, archive_files
from tests.export.probe import channel_peaks

SESSION = "sess-export-loud"


def _archive(root: Path, files: list[SegmentFile]) -> Backend:
    backend = open_backend(root.as_uri(), BackendOptions(local=LocalOptions(fsync=False)))
    archive_files(backend, SESSION, files)
    return backend


def _segment(folder: Path, pid: str, kind: str, start: float, seconds: float, **tone) -> SegmentFile:
    at = T0 + timedelta(seconds=start)
    path = folder / f"track_recording_{pid}_{kind}_{int(at.timestamp() * 1000)}.webm"
    if kind == "video":
        synth.make_webm_video(path, seconds, started_at=at)
    else:
        synth.make_webm_audio(path, seconds, started_at=at, **tone)
    return SegmentFile(pid, kind, start, seconds, path)


def test_normalize_keeps_a_stereo_track_stereo_and_a_mono_one_mono(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    files = [
        # The tone is in the left channel only: a mixed-down file would carry it in both.
        _segment(media, "carol", "audio", 0.0, 2.0, stereo=True),
        _segment(media, "carol", "video", 0.0, 2.0),
        _segment(media, "dave", "audio", 0.5, 1.5),
    ]
    with _archive(tmp_path / "archive", files) as backend:
        report = export_session(backend, SESSION, ExportRequest(mode="normalize"))
        assert report.ok, report.failures
        paths = {f.participant_id: backend.local_path(f.key) for f in report.files}
    left, right = channel_peaks(paths["carol"])
    # Lossy coding leaks a little into the silent side; a mix-down would put half the tone there.
    assert left > 0.2 and right < 0.1
    assert len(channel_peaks(paths["dave"])) == 1


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_the_mix_of_two_loud_voices_never_goes_beyond_full_scale(tmp_path: Path, fmt: str) -> None:
    media = tmp_path / "media"
    media.mkdir()
    # Each voice peaks at 0.9 and they overlap for a second: summed as is, that reaches 1.8,
    # which Opus (fed 16-bit samples) clips flat. AAC's encoder happens to turn such frames
    # down itself; the mix must not rely on that.
    files = [
        _segment(media, "erin", "audio", 0.0, 2.0, amplitude=0.9, tone_hz=440.0),
        _segment(media, "frank", "audio", 1.0, 2.0, amplitude=0.9, tone_hz=550.0),
    ]
    with _archive(tmp_path / "archive", files) as backend:
        report = export_session(backend, SESSION, ExportRequest(mode="normalize", format=fmt, mix=True))
        assert report.ok, report.failures
        (mix,) = [f for f in report.files if f.pair == "mix"]
        path = backend.local_path(mix.key)
    (peak,) = channel_peaks(path)
    assert peak <= 1.0
    # Limited, not scaled down: a voice alone is still as loud as in its own track.
    assert peak > 0.8
