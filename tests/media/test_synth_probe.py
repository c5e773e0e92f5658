from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.media import ebml, inspect_media, sniff_container, synth
from tests.fixtures.media import RECORDED_AT, SECONDS


@pytest.mark.parametrize(
    ("fixture", "kind", "types", "codecs"),
    [
        ("webm_audio", "audio", {"audio"}, {"opus"}),
        ("live_webm_audio", "screen_audio", {"audio"}, {"opus"}),
        ("webm_video", "video", {"video"}, {"vp8"}),
        ("live_webm_video", "screen_video", {"video"}, {"vp8"}),
        ("live_webm_av", "video", {"audio", "video"}, {"opus", "vp8"}),
        ("mp4_file", "video", {"audio", "video"}, {"aac", "h264"}),
    ],
)
def test_generated_media_verifies_for_its_kind(
    request: pytest.FixtureRequest, fixture: str, kind: str, types: set[str], codecs: set[str]
) -> None:
    path: Path = request.getfixturevalue(fixture)
    report = inspect_media(path, kind=kind, expected_duration=SECONDS, duration_tolerance=0.1)

    assert report.ok, [c.describe() for c in report.checks if not c.ok]
    assert {s.type for s in report.streams} == types
    assert {s.codec for s in report.streams} == codecs
    assert report.duration_seconds == pytest.approx(SECONDS, abs=0.1)
    assert report.packets == sum(s.packets for s in report.streams) > 0
    assert {c.name for c in report.checks} >= {"container", "structure", "demux", "kind"}


def test_live_recording_has_no_header_duration_but_gets_a_measured_one(
    live_webm_audio: Path,
) -> None:
    info = sniff_container(live_webm_audio)
    assert info.name == "webm"
    assert info.segment_size is None  # unknown-size marker, as a live recorder writes
    assert info.declared_duration is None
    assert b"\x1c\x53\xbb\x6b" not in live_webm_audio.read_bytes()  # no Cues element

    report = inspect_media(live_webm_audio, kind="audio")
    assert report.ok
    assert report.declared_duration is None
    assert report.duration_seconds == pytest.approx(SECONDS, abs=0.05)


def test_live_recording_clusters_carry_the_unknown_size_marker(live_webm_video: Path) -> None:
    data = live_webm_video.read_bytes()
    offsets = synth.cluster_offsets(live_webm_video)
    assert len(offsets) >= 2
    for offset in offsets:
        assert data[offset : offset + 4] == b"\x1f\x43\xb6\x75"  # Cluster ID
        size, _ = ebml.parse_size(data, offset + 4)
        assert size is None  # the unknown-size marker, whatever its width


def test_full_header_declares_duration_and_segment_size(webm_audio: Path) -> None:
    info = sniff_container(webm_audio)
    assert info.segment_end == webm_audio.stat().st_size
    assert info.declared_duration == pytest.approx(SECONDS, abs=0.05)

    report = inspect_media(webm_audio)
    assert report.declared_duration == info.declared_duration
    assert report.duration_seconds == pytest.approx(report.declared_duration, abs=0.01)


@pytest.mark.parametrize("fixture", ["webm_audio", "mp4_file"])
def test_start_time_stated_by_the_media_is_reported(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    report = inspect_media(request.getfixturevalue(fixture))
    assert report.started_at is not None
    # Matroska DateUTC keeps milliseconds; the MP4 header keeps whole seconds.
    assert abs((report.started_at - RECORDED_AT).total_seconds()) < 1


def test_media_without_a_start_time_reports_none(live_webm_audio: Path) -> None:
    assert inspect_media(live_webm_audio).started_at is None


def test_synthesis_is_reproducible_byte_for_byte(tmp_path: Path) -> None:
    for make in (synth.make_webm_audio, synth.make_webm_video, synth.make_mp4):
        first = make(tmp_path / "one", 1.0)
        second = make(tmp_path / "two", 1.0)
        assert first.read_bytes() == second.read_bytes(), make.__name__


@pytest.mark.parametrize("seconds", [0.5, 7.0])
def test_measured_duration_follows_the_recording_length(tmp_path: Path, seconds: float) -> None:
    path = synth.make_webm_av(tmp_path / "av.webm", seconds)
    report = inspect_media(path, kind="video", expected_duration=seconds, duration_tolerance=0.1)
    assert report.ok
    assert report.duration_seconds == pytest.approx(seconds, abs=0.1)


def test_report_serialises_with_every_check(live_webm_av: Path) -> None:
    data = inspect_media(live_webm_av, kind="video").as_dict()
    assert data["ok"] is True
    assert data["container"] == "webm"
    assert sorted(s["type"] for s in data["streams"]) == ["audio", "video"]
    assert all({"name", "ok", "expected", "found"} <= set(c) for c in data["checks"])


def test_live_recording_keeps_its_start_time(tmp_path: Path) -> None:
    path = synth.make_webm_video(tmp_path / "v.webm", 1.0, live=True, started_at=RECORDED_AT)
    assert sniff_container(path).segment_size is None
    started = inspect_media(path).started_at
    assert started is not None
    assert abs((started - RECORDED_AT).total_seconds()) < 0.001


@pytest.mark.parametrize(
    ("audio", "video", "kind", "types"),
    [(True, False, "audio", {"audio"}), (False, True, "video", {"video"})],
)
def test_single_stream_mp4_verifies_for_its_kind(
    tmp_path: Path, audio: bool, video: bool, kind: str, types: set[str]
) -> None:
    path = synth.make_mp4(tmp_path / "one.mp4", 1.0, audio=audio, video=video)
    report = inspect_media(path, kind=kind, expected_duration=1.0, duration_tolerance=0.1)
    assert report.ok
    assert {s.type for s in report.streams} == types
