from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.media import MediaReport, inspect_media, synth
from tests.fixtures.media import SECONDS

# Every way a cut shows itself; a truncated file must fail at least one of them.
TRUNCATION_CHECKS = {"structure", "segment-size", "duration", "demux", "packets"}


def _failed(report: MediaReport) -> set[str]:
    return {check.name for check in report.checks if not check.ok}


def _middle_of_a_block(path: Path, index: int) -> int:
    blocks = synth.block_offsets(path)
    return blocks[index % len(blocks)] + 5


@pytest.mark.parametrize("fraction", [0.02, 0.25, 0.5, 0.75, 0.97, 0.999])
@pytest.mark.parametrize(
    "fixture", ["webm_audio", "live_webm_audio", "webm_video", "live_webm_av", "mp4_file"]
)
def test_cut_at_any_fraction_is_caught(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str, fraction: float
) -> None:
    cut = synth.truncate(request.getfixturevalue(fixture), tmp_path / "cut", fraction=fraction)

    report = inspect_media(cut)

    assert not report.ok
    assert _failed(report) & TRUNCATION_CHECKS


@pytest.mark.parametrize("block", [0, 10, -1])
@pytest.mark.parametrize("fixture", ["live_webm_audio", "live_webm_video", "webm_audio"])
def test_cut_inside_a_block_of_a_cluster_is_caught(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str, block: int
) -> None:
    source = request.getfixturevalue(fixture)
    cut = synth.truncate(source, tmp_path / "cut", nbytes=_middle_of_a_block(source, block))

    report = inspect_media(cut)

    assert "structure" in _failed(report)
    assert report.failure is not None
    structure = next(c for c in report.checks if c.name == "structure")
    assert structure.detail == "the file was cut short"


def test_cut_at_a_cluster_boundary_of_a_full_header_fails_segment_size(
    webm_audio: Path, tmp_path: Path
) -> None:
    boundary = synth.cluster_offsets(webm_audio)[1]
    cut = synth.truncate(webm_audio, tmp_path / "cut", nbytes=boundary)

    report = inspect_media(cut)

    assert {"segment-size", "duration"} <= _failed(report)
    assert report.duration_seconds is not None
    assert report.declared_duration is not None
    assert report.duration_seconds < report.declared_duration - 0.5


def test_live_recording_cut_at_a_cluster_boundary_needs_the_expected_duration(
    live_webm_audio: Path, tmp_path: Path
) -> None:
    # A live recording declares no sizes and no duration, so a cut exactly between
    # Clusters leaves well-formed media: only the listing's duration can reveal it.
    boundary = synth.cluster_offsets(live_webm_audio)[1]
    cut = synth.truncate(live_webm_audio, tmp_path / "cut", nbytes=boundary)

    assert inspect_media(cut, kind="audio").ok
    report = inspect_media(cut, kind="audio", expected_duration=SECONDS)
    assert _failed(report) == {"expected-duration"}
    whole = inspect_media(live_webm_audio, kind="audio", expected_duration=SECONDS)
    assert whole.ok


def test_truncated_fixture_fails_with_a_reason(truncated_webm: Path) -> None:
    report = inspect_media(truncated_webm, kind="audio")
    assert report.failure is not None
    assert "bytes" in report.failure.describe()
    assert report.packets > 0  # what survived still demuxes: FFmpeg alone would accept it


def test_mp4_cut_inside_its_media_data_fails_structure_and_demux(
    mp4_file: Path, tmp_path: Path
) -> None:
    cut = synth.truncate(mp4_file, tmp_path / "cut.mp4", fraction=0.5)
    report = inspect_media(cut, kind="video")
    assert {"structure", "demux"} <= _failed(report)
    assert "mdat" in str(next(c for c in report.checks if c.name == "structure").found)
