"""What an exported file holds, measured with PyAV and, independently, with ffprobe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest


@dataclass
class StreamFacts:
    """One stream's packets: where they start, end, and the holes between them."""

    type: str
    codec: str
    times: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return max(self.ends)

    def gaps(self, longer_than: float) -> list[tuple[float, float]]:
        """``(start, length)`` of every stretch without packets longer than ``longer_than``."""
        found = []
        for end, nxt in zip(self.ends, self.times[1:], strict=False):
            if nxt - end > longer_than:
                found.append((round(end, 3), round(nxt - end, 3)))
        return found


def facts(path: Path, *, decode_video: bool = False) -> dict[str, StreamFacts]:
    """Per stream type, every packet's time (and decoded frame sizes when asked)."""
    result: dict[str, StreamFacts] = {}
    with av.open(os.fspath(path)) as container:
        frame_time = {}
        for stream in container.streams:
            result[stream.type] = StreamFacts(stream.type, stream.codec_context.name)
            rate = (stream.average_rate or stream.guessed_rate) if stream.type == "video" else None
            # A video packet without a duration shows for one frame time, as players show it.
            frame_time[stream.type] = 1 / float(rate) if rate else 0.0
        for packet in container.demux():
            if packet.pts is None or not packet.size:
                continue
            item = result[packet.stream.type]
            start = float(packet.pts * packet.time_base)
            item.times.append(start)
            shown = float(packet.duration * packet.time_base) if packet.duration else 0.0
            item.ends.append(start + (shown or frame_time[packet.stream.type]))
            if decode_video and packet.stream.type == "video":
                for frame in packet.decode():
                    item.sizes.add((frame.width, frame.height))
    for item in result.values():
        order = sorted(range(len(item.times)), key=item.times.__getitem__)
        item.times = [item.times[i] for i in order]
        item.ends = [item.ends[i] for i in order]
    return result


def seek_lands(path: Path, target: float) -> float:
    """Seek the video (else audio) stream to ``target`` s; the time of the first frame decoded."""
    with av.open(os.fspath(path)) as container:
        stream = (container.streams.video or container.streams.audio)[0]
        container.seek(round(target / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            return float(frame.pts * frame.time_base)
    raise AssertionError("nothing decoded after the seek")


def ffprobe(path: Path) -> dict:
    """ffprobe's view of the file (the README's test command installs ffmpeg)."""
    exe = shutil.which("ffprobe")
    if exe is None:
        pytest.fail("ffprobe is not installed: run `sh tests/system-packages.sh` (apt-get)")
    out = subprocess.run(
        [exe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", os.fspath(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def audio_level(path: Path, start: float, end: float) -> float:
    """Peak absolute sample value of the audio between ``start`` and ``end`` s (0 is silence)."""
    import array

    peak = 0.0
    with av.open(os.fspath(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                t0 = float(out.pts * out.time_base) if out.pts is not None else 0.0
                samples = array.array("f", bytes(out.planes[0])[: out.samples * 4])
                for i in range(0, out.samples, 48):
                    if start <= t0 + i / 48000 < end:
                        peak = max(peak, abs(samples[i]))
    return peak


def video_luma(path: Path, at: float) -> float:
    """Mean luma of the frame shown at ``at`` seconds (16 is black)."""
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        shown = None
        for frame in container.decode(stream):
            if float(frame.pts * frame.time_base) > at + 1e-6:
                break
            shown = frame
        assert shown is not None
        luma = bytes(shown.planes[0])
        return sum(luma[:: max(1, len(luma) // 2000)]) / len(luma[:: max(1, len(luma) // 2000)])


def channel_peaks(path: Path) -> list[float]:
    """Peak absolute sample value of each audio channel over the whole file (1.0 is full scale)."""
    import array

    peaks: list[float] = []
    with av.open(os.fspath(path)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            if frame.format.name != "fltp":
                frame = av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.sample_rate).resample(frame)[0]
            if not peaks:
                peaks = [0.0] * len(frame.planes)
            for index, plane in enumerate(frame.planes):
                samples = array.array("f", bytes(plane)[: frame.samples * 4])
                peaks[index] = max(peaks[index], max(samples), -min(samples))
    return peaks
