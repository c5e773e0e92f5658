"""Media and caller expectations are verified after the bytes: real PyAV-made files."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.download import Downloader
from pipeline.media import synth
from pipeline.segment import StoredSegment
from tests.download.conftest import fast_policy
from tests.fixtures.media import RECORDED_AT
from tests.fixtures.origin import Origin


async def test_audio_webm_for_an_audio_track_passes_with_its_facts(
    origin: Origin, webm_audio: Path, tmp_path: Path
) -> None:
    origin.add("a.webm", webm_audio.read_bytes())
    async with Downloader(fast_policy(origin)) as downloader:
        result = await downloader.fetch(
            origin.url_for("a.webm"),
            tmp_path / "a.webm",
            kind="audio",
            expected_size=webm_audio.stat().st_size,
            expected_duration=3.0,
        )
    assert result.ok, result.reason
    assert result.container == "webm"
    assert [(s.type, s.codec) for s in result.streams] == [("audio", "opus")]
    assert result.duration_seconds is not None and abs(result.duration_seconds - 3.0) < 0.1
    assert result.started_at == RECORDED_AT
    assert [c.name for c in result.checks][:2] == ["transport", "source_checksum:ETag"]
    assert result.as_dict()["started_at"] == RECORDED_AT.isoformat()


async def test_the_start_time_falls_back_to_the_file_name(
    origin: Origin, live_webm_audio: Path, tmp_path: Path
) -> None:
    name = "track_recording_p1_audio_1714555815250.webm"
    origin.add(f"s/p1/audio/{name}", live_webm_audio.read_bytes())
    async with Downloader(fast_policy(origin)) as downloader:
        result = await downloader.fetch(
            origin.url_for(f"s/p1/audio/{name}"), tmp_path / "seg.webm", kind="audio"
        )
    assert result.ok, result.reason
    # The media states no start, so the start of the stored segment comes from the URL's name.
    assert result.started_at is None
    stored = StoredSegment.of_download(result, key="s/p1/audio/seg.webm", archived_at=RECORDED_AT)
    start = stored.start("seg.webm")
    assert start.epoch_ms == 1714555815250
    assert start.at is not None and int(start.at.timestamp() * 1000) == 1714555815250


async def test_a_video_file_delivered_for_an_audio_track_fails(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    origin.add("a.webm", webm_video.read_bytes())
    async with Downloader(fast_policy(origin)) as downloader:
        result = await downloader.fetch(origin.url_for("a.webm"), tmp_path / "a.webm", kind="audio")
    assert not result.ok
    assert (result.reason or "").startswith("kind:")
    assert (tmp_path / "a.webm").read_bytes() == webm_video.read_bytes()


async def test_a_truncated_recording_served_whole_fails_on_the_media(
    origin: Origin, truncated_webm: Path, tmp_path: Path
) -> None:
    origin.add("t.webm", truncated_webm.read_bytes())
    async with Downloader(fast_policy(origin)) as downloader:
        result = await downloader.fetch(origin.url_for("t.webm"), tmp_path / "t.webm", kind="audio")
    assert not result.ok
    assert result.checks[0].ok  # the transfer itself was complete...
    failed = [c.name for c in result.checks if not c.ok]
    assert failed  # ...the media is what is cut short
    assert "transport" not in failed and not any(n.startswith("source") for n in failed)


async def test_an_mp4_for_a_video_track_passes(
    origin: Origin, mp4_file: Path, tmp_path: Path
) -> None:
    origin.add("v.mp4", mp4_file.read_bytes())
    async with Downloader(fast_policy(origin)) as downloader:
        result = await downloader.fetch(origin.url_for("v.mp4"), tmp_path / "v.mp4", kind="video")
    assert result.ok, result.reason
    assert result.container == "mp4"
    assert "video" in {s.type for s in result.streams}


async def test_garbage_bytes_fail_on_the_container(origin: Origin, tmp_path: Path) -> None:
    origin.add("g.webm", synth.garbage(tmp_path / "g.src", 5000).read_bytes())
    async with Downloader(fast_policy(origin)) as downloader:
        result = await downloader.fetch(origin.url_for("g.webm"), tmp_path / "g.webm", kind="audio")
    assert not result.ok and (result.reason or "").startswith("container:")


async def test_expected_size_and_duration_from_the_listing_are_checked(
    origin: Origin, webm_audio: Path, tmp_path: Path
) -> None:
    origin.add("a.webm", webm_audio.read_bytes())
    size = webm_audio.stat().st_size
    async with Downloader(fast_policy(origin)) as downloader:
        wrong_size = await downloader.fetch(
            origin.url_for("a.webm"), tmp_path / "1.webm", kind="audio", expected_size=size + 1
        )
        wrong_duration = await downloader.fetch(
            origin.url_for("a.webm"), tmp_path / "2.webm", kind="audio", expected_duration=9.0
        )
    assert not wrong_size.ok
    assert wrong_size.reason == f"expected_size: expected {size + 1}, found {size} (bytes)"
    assert not wrong_duration.ok and "expected-duration" in (wrong_duration.reason or "")


async def test_an_existing_staging_file_is_replaced_not_appended_to(
    origin: Origin, webm_audio: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "a.webm"
    shutil.copy(webm_audio, dest)
    origin.add("a.webm", webm_audio.read_bytes())
    async with Downloader(fast_policy(origin)) as downloader:
        result = await downloader.fetch(origin.url_for("a.webm"), dest, kind="audio")
    assert result.ok and dest.stat().st_size == webm_audio.stat().st_size
