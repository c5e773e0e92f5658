"""Real, small media files made with PyAV: the test suite's recordings and the demo's.

Every file is encoded for real (Opus, VP8, H.264, AAC) in a few milliseconds and is
byte-for-byte reproducible: the muxers run in FFmpeg's bit-exact mode, which drops the
random Matroska UIDs and the library version string, and encoders run single-threaded.

Live recordings: a browser or SFU recorder writes WebM as it goes and never seeks back,
so its header has no Duration, no Cues, and the Segment and every Cluster carry the
"unknown size" marker. FFmpeg's Matroska muxer gives the first three with its ``live``
option; it still buffers each Cluster and writes its real size, so ``live=True`` then
rewrites each Cluster's size field in place to the unknown-size marker of the same width
(no byte moves, every other offset stays valid).
"""

from __future__ import annotations

import array
import math
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from pipeline.media import ebml

AUDIO_FRAME_SAMPLES = 960  # 20 ms at 48 kHz: the Opus frame WebRTC uses


def make_webm_audio(
    path: Path,
    seconds: float = 2.0,
    *,
    sample_rate: int = 48000,
    tone_hz: float = 440.0,
    live: bool = True,
    started_at: datetime | None = None,
    stereo: bool = False,
    amplitude: float = 0.25,
) -> Path:
    """An Opus audio-only WebM, as a participant's microphone track is recorded.

    ``stereo`` puts the tone in the left channel only (the right one is silent),
    so a reader can tell whether the channels were kept apart; ``amplitude`` is
    the tone's peak (1.0 is full scale).
    """
    return _write(
        path,
        "webm",
        seconds,
        audio=_AudioSpec("libopus", sample_rate, tone_hz, stereo=stereo, amplitude=amplitude),
        video=None,
        live=live,
        started_at=started_at,
    )


def make_webm_video(
    path: Path,
    seconds: float = 2.0,
    *,
    width: int = 160,
    height: int = 120,
    fps: int = 15,
    live: bool = True,
    started_at: datetime | None = None,
) -> Path:
    """A VP8 video-only WebM, as a participant's camera or screen track is recorded."""
    return _write(
        path,
        "webm",
        seconds,
        audio=None,
        video=_VideoSpec("libvpx", width, height, fps),
        live=live,
        started_at=started_at,
    )


def make_webm_av(
    path: Path,
    seconds: float = 2.0,
    *,
    sample_rate: int = 48000,
    tone_hz: float = 440.0,
    width: int = 160,
    height: int = 120,
    fps: int = 15,
    live: bool = True,
    started_at: datetime | None = None,
) -> Path:
    """A WebM with a VP8 video stream and an Opus audio stream."""
    return _write(
        path,
        "webm",
        seconds,
        audio=_AudioSpec("libopus", sample_rate, tone_hz),
        video=_VideoSpec("libvpx", width, height, fps),
        live=live,
        started_at=started_at,
    )


def make_mp4(
    path: Path,
    seconds: float = 2.0,
    *,
    audio: bool = True,
    video: bool = True,
    width: int = 160,
    height: int = 120,
    fps: int = 15,
    started_at: datetime | None = None,
) -> Path:
    """An MP4 with H.264 video and/or AAC audio (the container some listings show)."""
    if not (audio or video):
        raise ValueError("an MP4 needs at least one stream")
    return _write(
        path,
        "mp4",
        seconds,
        audio=_AudioSpec("aac", 48000, 440.0) if audio else None,
        video=_VideoSpec("libx264", width, height, fps) if video else None,
        live=False,
        started_at=started_at,
    )


def truncate(
    path: Path, dest: Path, *, fraction: float | None = None, nbytes: int | None = None
) -> Path:
    """Copy the first ``nbytes`` (or ``fraction`` of the) bytes of ``path`` to ``dest``."""
    if (fraction is None) == (nbytes is None):
        raise ValueError("give exactly one of fraction or nbytes")
    data = path.read_bytes()
    keep = int(len(data) * fraction) if fraction is not None else nbytes
    assert keep is not None
    if not 0 <= keep <= len(data):
        raise ValueError(f"cannot keep {keep} bytes of a {len(data)}-byte file")
    dest.write_bytes(data[:keep])
    return dest


def garbage(path: Path, nbytes: int = 4096, *, seed: int = 0) -> Path:
    """A file of reproducible random bytes: what a broken origin might serve."""
    path.write_bytes(random.Random(seed).randbytes(nbytes))
    return path


def cluster_offsets(path: Path) -> list[int]:
    """File offsets of every Matroska Cluster in ``path``: cut points inside the media."""
    return [c.offset for c in _elements(path) if c.id == ebml.CLUSTER]


def block_offsets(path: Path) -> list[int]:
    """File offsets of every SimpleBlock in ``path`` (cutting inside one is a mid-cluster cut)."""
    clusters = [c for c in _elements(path) if c.id == ebml.CLUSTER]
    offsets: list[int] = []
    with path.open("rb") as stream:
        for cluster in clusters:
            end = cluster.end if cluster.end is not None else path.stat().st_size
            pos = cluster.data_offset
            while pos < end:
                element = ebml.read_element(stream, pos)
                if element is None or element.end is None or element.id in ebml.LEVEL1_IDS:
                    break
                if element.id == 0xA3:
                    offsets.append(element.offset)
                pos = element.end
    return offsets


def mark_clusters_unknown_size(path: Path) -> int:
    """Rewrite each Cluster's size field to the unknown-size marker; returns how many."""
    clusters = [c for c in _elements(path) if c.id == ebml.CLUSTER and c.size is not None]
    with path.open("r+b") as stream:
        for cluster in clusters:
            width = cluster.data_offset - cluster.offset - 4  # Cluster IDs are 4 bytes
            stream.seek(cluster.offset + 4)
            stream.write(((1 << (7 * width + 1)) - 1).to_bytes(width, "big"))
    return len(clusters)


def _elements(path: Path) -> list[ebml.Element]:
    size = path.stat().st_size
    with path.open("rb") as stream:
        header = ebml.read_element(stream, 0)
        if header is None or header.id != ebml.EBML_HEADER or header.end is None:
            raise ValueError(f"{path} is not an EBML file")
        segment = ebml.read_element(stream, header.end)
        if segment is None or segment.id != ebml.SEGMENT:
            raise ValueError(f"{path} has no Segment")
        return list(ebml.walk_segment(stream, segment, size))


class _AudioSpec:
    def __init__(
        self, codec: str, sample_rate: int, tone_hz: float, *, stereo: bool = False,
        amplitude: float = 0.25,
    ) -> None:  # fmt: skip
        self.codec, self.sample_rate, self.tone_hz = codec, sample_rate, tone_hz
        self.stereo, self.amplitude = stereo, amplitude


class _VideoSpec:
    def __init__(self, codec: str, width: int, height: int, fps: int) -> None:
        self.codec, self.width, self.height, self.fps = codec, width, height, fps


def _write(
    path: Path,
    fmt: str,
    seconds: float,
    *,
    audio: _AudioSpec | None,
    video: _VideoSpec | None,
    live: bool,
    started_at: datetime | None,
) -> Path:
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    options = {"fflags": "+bitexact"}
    if fmt == "webm":
        # A Cluster per second, as browser recorders write, so files have inner boundaries.
        options["cluster_time_limit"] = "1000"
    if live:
        options["live"] = "1"
    with av.open(os.fspath(path), "w", format=fmt, options=options) as container:
        if started_at is not None:
            container.metadata["creation_time"] = _ffmpeg_time(started_at)
        jobs: list[Iterator[tuple[float, Any]]] = []
        if video is not None:
            jobs.append(_video_packets(container, video, seconds))
        if audio is not None:
            jobs.append(_audio_packets(container, audio, seconds))
        # Feed the muxer in time order, as a recorder would, so streams interleave.
        pending = [(next(job, None), job) for job in jobs]
        while any(item is not None for item, _ in pending):
            index = min(
                (i for i, (item, _) in enumerate(pending) if item is not None),
                key=lambda i: pending[i][0][0],  # type: ignore[index]  # filtered to non-None
            )
            item, job = pending[index]
            assert item is not None
            container.mux(item[1])
            pending[index] = (next(job, None), job)
    if live and fmt == "webm":
        mark_clusters_unknown_size(path)
    return path


def _ffmpeg_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("started_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _audio_packets(container: Any, spec: _AudioSpec, seconds: float) -> Iterator[tuple[float, Any]]:
    layout = "stereo" if spec.stereo else "mono"
    stream = container.add_stream(spec.codec, rate=spec.sample_rate, layout=layout)
    stream.bit_rate = 32000 if spec.codec == "libopus" else 64000
    # libopus takes packed samples: a stereo frame is (left, right) pairs in one plane.
    sample_format = "s16" if spec.codec == "libopus" else "fltp"
    if spec.stereo and spec.codec != "libopus":
        raise ValueError("stereo test tones are made for Opus only")
    total = round(seconds * spec.sample_rate)
    time_base = Fraction(1, spec.sample_rate)
    frame_size = stream.codec_context.frame_size or AUDIO_FRAME_SAMPLES
    # Two seconds back to back, so any frame's slice is contiguous.
    looped = _tone_second(spec.sample_rate, spec.tone_hz, sample_format, spec.amplitude) * 2
    width = 2 if sample_format == "s16" else 4
    if spec.stereo:
        # The tone on the left, silence on the right.
        looped = b"".join(looped[i : i + width] + bytes(width) for i in range(0, len(looped), width))
        width *= 2
    pts = 0
    while pts < total:
        count = min(frame_size, total - pts)
        frame = av.AudioFrame(format=sample_format, layout=layout, samples=count)
        frame.sample_rate = spec.sample_rate
        start = (pts % spec.sample_rate) * width
        raw = looped[start : start + count * width]
        frame.planes[0].update(raw.ljust(frame.planes[0].buffer_size, b"\0"))
        frame.pts, frame.time_base = pts, time_base
        for packet in stream.encode(frame):
            yield _packet_time(packet), packet
        pts += count
    for packet in stream.encode(None):
        yield _packet_time(packet), packet


def _tone_second(sample_rate: int, tone_hz: float, sample_format: str, amplitude: float) -> bytes:
    """One second of a sine tone, repeated for longer files (seamless for whole-Hz tones)."""
    step = 2 * math.pi * tone_hz / sample_rate
    tone = [amplitude * math.sin(step * i) for i in range(sample_rate)]
    if sample_format.startswith("s16"):
        return array.array("h", (int(32767 * v) for v in tone)).tobytes()
    return array.array("f", tone).tobytes()


def _video_packets(container: Any, spec: _VideoSpec, seconds: float) -> Iterator[tuple[float, Any]]:
    stream = container.add_stream(spec.codec, rate=spec.fps)
    stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
    stream.bit_rate = 200_000
    stream.codec_context.gop_size = spec.fps  # a key frame every second, like WebRTC senders
    stream.codec_context.thread_count = 1  # threads make encoders nondeterministic
    if spec.codec == "libx264":
        stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
    elif spec.codec == "libvpx":
        stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
    time_base = Fraction(1, spec.fps)
    for index in range(max(1, round(seconds * spec.fps))):
        frame = av.VideoFrame(spec.width, spec.height, "yuv420p")
        _paint(frame, index)
        frame.pts, frame.time_base = index, time_base
        for packet in stream.encode(frame):
            yield _packet_time(packet), packet
    for packet in stream.encode(None):
        yield _packet_time(packet), packet


def _paint(frame: av.VideoFrame, index: int) -> None:
    """A bar sweeping across grey: moving content, so every frame encodes differently."""
    luma = frame.planes[0]
    bar = (index * 4) % frame.width
    row = bytes(235 if bar <= x < bar + 16 else 64 for x in range(frame.width))
    luma.update(row.ljust(luma.line_size, b"\0") * frame.height)
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * plane.buffer_size)


def _packet_time(packet: Any) -> float:
    if packet.pts is None or packet.time_base is None:
        return 0.0
    return float(packet.pts * packet.time_base)
