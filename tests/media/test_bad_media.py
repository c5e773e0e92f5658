from __future__ import annotations

import os
from pathlib import Path

import av
import pytest

from pipeline.media import MediaReport, inspect_media, sniff_container, synth


def _failed(report: MediaReport) -> set[str]:
    return {check.name for check in report.checks if not check.ok}


@pytest.mark.parametrize("kind", ["audio", "screen_audio"])
@pytest.mark.parametrize("fixture", ["webm_video", "live_webm_av", "mp4_file"])
def test_video_delivered_as_an_audio_kind_fails_the_kind_check(
    request: pytest.FixtureRequest, fixture: str, kind: str
) -> None:
    report = inspect_media(request.getfixturevalue(fixture), kind=kind)
    assert _failed(report) == {"kind"}
    kind_check = report.failure
    assert kind_check is not None and "video" in str(kind_check.found)


@pytest.mark.parametrize("kind", ["video", "screen_video"])
def test_audio_delivered_as_a_video_kind_fails_the_kind_check(webm_audio: Path, kind: str) -> None:
    report = inspect_media(webm_audio, kind=kind)
    assert _failed(report) == {"kind"}
    assert report.failure is not None and report.failure.found == "audio"


def test_an_unknown_kind_is_refused(webm_audio: Path) -> None:
    assert _failed(inspect_media(webm_audio, kind="microphone")) == {"kind"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\x00" * 64, "unrecognised signature"),
        (b"<html><body>Access denied</body></html>", "unrecognised signature"),
    ],
)
def test_non_media_fails_the_container_check_without_raising(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "file.webm"
    path.write_bytes(content)

    report = inspect_media(path, kind="audio")

    assert not report.ok
    assert report.failure is not None and report.failure.name == "container"
    assert reason in str(report.failure.detail)
    assert report.packets == 0


@pytest.mark.parametrize("seed", range(5))
def test_random_garbage_fails_cleanly(tmp_path: Path, seed: int) -> None:
    path = synth.garbage(tmp_path / "garbage.webm", 20_000, seed=seed)
    report = inspect_media(path, kind="video")
    assert not report.ok
    assert report.container is None


@pytest.mark.parametrize("fixture", ["webm_audio", "mp4_file"])
def test_a_valid_header_followed_by_garbage_fails_cleanly(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str
) -> None:
    source: Path = request.getfixturevalue(fixture)
    head = source.read_bytes()[:48]
    path = tmp_path / source.name
    path.write_bytes(head + synth.garbage(tmp_path / "junk", 30_000, seed=7).read_bytes())

    report = inspect_media(path, kind="audio")

    assert not report.ok
    assert _failed(report) & {"structure", "segment-size", "demux", "packets"}


@pytest.mark.parametrize("where", [0.3, 0.6, 0.9])
def test_damaged_bytes_inside_the_media_are_reported_as_damage(
    live_webm_av: Path, tmp_path: Path, where: float
) -> None:
    # Damage that starts on a block header breaks the structure; damage confined to a
    # codec payload would need decoding to see, which verification does not do.
    blocks = synth.block_offsets(live_webm_av)
    at = blocks[int(len(blocks) * where)]
    data = bytearray(live_webm_av.read_bytes())
    data[at : at + 64] = b"\x00" * 64
    path = tmp_path / "damaged.webm"
    path.write_bytes(bytes(data))

    report = inspect_media(path, kind="video")

    assert "structure" in _failed(report)
    structure = next(c for c in report.checks if c.name == "structure")
    assert structure.detail == "the data is damaged"
    assert f"at byte {at}" in str(structure.found)


def test_an_ebml_file_of_another_doctype_is_not_accepted(tmp_path: Path) -> None:
    path = tmp_path / "other.mka"
    path.write_bytes(
        bytes.fromhex("1a45dfa3") + bytes([0x80 | 7]) + bytes.fromhex("4282") + b"\x84abcd"
    )
    report = inspect_media(path)
    assert report.failure is not None and report.failure.name == "container"
    assert report.failure.found == "abcd"


def test_matroska_doctype_is_recognised_and_verified(webm_audio: Path, tmp_path: Path) -> None:
    path = tmp_path / "remux.mkv"
    with av.open(os.fspath(webm_audio)) as source, av.open(os.fspath(path), "w") as target:
        out = target.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux():
            if packet.size:
                packet.stream = out
                target.mux(packet)

    assert sniff_container(path).name == "matroska"
    report = inspect_media(path, kind="audio")
    assert report.ok
    assert report.container == "matroska"


def test_a_missing_file_is_the_callers_mistake(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        inspect_media(tmp_path / "absent.webm")
