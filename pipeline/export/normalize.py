"""``--mode normalize``: the file an editor accepts.

One participant's pair becomes a file that starts at session time zero and
ends at the session's end, with a constant frame rate (the highest the pair's
video segments have), one resolution (the largest seen; smaller or differently
shaped frames are scaled to fit and padded), black video and silent audio
wherever the participant had nothing, and audio and video on the same clock.
Files of all participants therefore line up when laid side by side.

Video and audio are produced in steps of the timeline, each up to the same
moment, so the muxer receives them interleaved and memory does not grow with
the session's length.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from storage_backends import Backend

from .audio import AudioEncoder, AudioLine
from .errors import ExportUnsupported
from .formats import ENCODINGS, MUXERS, Encoding
from .prefetch import Prefetch
from .reader import open_segment
from .timeline import Placement, Track, Written

#: Timeline seconds produced per step (both streams advance to the same moment).
STEP_SECONDS = 5.0
#: Stretches of audio encoded ahead of the video (a few kilobytes each).
AUDIO_STEPS_AHEAD = 3
#: Decoded pictures handed from the decoding thread at once, in bytes (a few at 1080p).
VIDEO_BATCH_BYTES = 4 << 20
DEFAULT_FPS = 30
#: Output channel layout by the most channels any of a track's segments has: a mono
#: microphone stays mono, a stereo tab share stays stereo, and anything wider is mixed
#: down to stereo, which every player and editor takes.
AUDIO_LAYOUTS = {1: "mono", 2: "stereo"}
MAX_FPS = 60


def _geometry(
    backend: Backend, placements: Sequence[Placement], temp_dir: Path | None
) -> tuple[int, int, int]:
    """The largest width x height and the highest frame rate among the video segments.

    Only each segment's header is read here; its bytes are verified when it is decoded.
    """
    width = height = 0
    fps = 0
    for placement in placements:
        with open_segment(backend, placement.segment, "video", temp_dir=temp_dir) as segment:
            ctx = segment.stream.codec_context
            if ctx.width * ctx.height > width * height:
                width, height = ctx.width, ctx.height
            rate = segment.stream.average_rate or segment.stream.guessed_rate
            if rate and 1 <= rate <= MAX_FPS:
                fps = max(fps, round(rate))
    # 4:2:0 video needs even dimensions.
    return width + width % 2, height + height % 2, fps or DEFAULT_FPS


def _audio_layout(backend: Backend, placements: Sequence[Placement], temp_dir: Path | None) -> str:
    """The channel layout to write: the widest the audio segments have (see ``AUDIO_LAYOUTS``).

    As for the video's geometry, only each segment's header is read here.
    """
    channels = 1
    for placement in placements:
        with open_segment(backend, placement.segment, "audio", temp_dir=temp_dir) as segment:
            channels = max(channels, segment.stream.codec_context.channels or 1)
    return AUDIO_LAYOUTS.get(channels, "stereo")


def _black(width: int, height: int) -> Any:
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, (16, 128, 128), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


class _Fitter:
    """Scales frames into the output size, keeping their shape (padded with black)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._graphs: dict[tuple[int, int, str], Any] = {}

    def __call__(self, frame: Any) -> Any:
        if (frame.width, frame.height) == (self.width, self.height):
            return frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
        if frame.width * self.height == frame.height * self.width:
            return frame.reformat(width=self.width, height=self.height, format="yuv420p")
        shape = (frame.width, frame.height, frame.format.name)
        graph = self._graphs.get(shape)
        if graph is None:
            graph = self._graphs[shape] = self._graph(frame)
        graph.push(frame)
        return graph.pull()

    def _graph(self, frame: Any) -> Any:
        graph = av.filter.Graph()
        source = graph.add_buffer(
            width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 1000)
        )
        scale = graph.add("scale", f"{self.width}:{self.height}:force_original_aspect_ratio=decrease")
        pad = graph.add("pad", f"{self.width}:{self.height}:(ow-iw)/2:(oh-ih)/2:black")
        fmt = graph.add("format", "yuv420p")
        sink = graph.add("buffersink")
        source.link_to(scale)
        scale.link_to(pad)
        pad.link_to(fmt)
        fmt.link_to(sink)
        graph.configure()
        return graph


class _VideoLine:
    """Constant-rate output frames: the latest source frame on show, or black."""

    def __init__(
        self, backend: Backend, placements: Sequence[Placement], stream: Any, fps: int,
        temp_dir: Path | None,
    ) -> None:  # fmt: skip
        self._backend, self._placements, self._temp_dir = backend, placements, temp_dir
        self._stream, self.fps = stream, fps
        self._time_base = Fraction(1, fps)
        self._fit = _Fitter(stream.codec_context.width, stream.codec_context.height)
        self._black = _black(self._fit.width, self._fit.height)
        # Decoding and scaling run a little ahead on their own thread, the encoder on this one.
        # Hand frames over in batches of about VIDEO_BATCH_BYTES (at least a few frames).
        frame_bytes = self._fit.width * self._fit.height * 3 // 2
        batch = max(4, min(64, VIDEO_BATCH_BYTES // max(1, frame_bytes)))
        self._source = Prefetch(
            self._timed_frames(), name="export-video", batch=batch, depth=max(32, 2 * batch)
        )
        self._next = next(self._source, None)
        self._current: tuple[float, float, Any] | None = None
        self.index = 0

    def _timed_frames(self) -> Iterator[tuple[float, float, Any]]:
        """``(timeline seconds, end of its segment, frame)`` for every decoded frame."""
        for placement in self._placements:
            with open_segment(
                self._backend, placement.segment, "video", temp_dir=self._temp_dir
            ) as segment:
                tb = float(segment.stream.time_base)
                origin = segment.stream.start_time
                for frame in segment.frames():
                    if frame.pts is None:
                        continue
                    if origin is None:
                        origin = frame.pts
                    at = placement.offset + (frame.pts - origin) * tb
                    yield at, placement.end, self._fit(frame)
                segment.verify()

    def write_until(self, seconds: float) -> list[Any]:
        """Encode every output frame whose time is before ``seconds``; their packets."""
        packets: list[Any] = []
        half = 0.5 / self.fps
        while self.index < seconds * self.fps - 1e-9:
            at = self.index / self.fps
            while self._next is not None and self._next[0] <= at + half:
                self._current = self._next
                self._next = next(self._source, None)
            if self._current is not None and at < self._current[1]:
                frame = self._current[2]
            else:
                frame = self._black
            frame.pts = self.index
            frame.time_base = self._time_base
            packets += self._stream.encode(frame)
            self.index += 1
        return packets

    def finish(self) -> list[Any]:
        """Drain what the source still holds (verifying the last segments) and flush."""
        for _ in self._source:
            pass
        return list(self._stream.encode(None))

    def close(self) -> None:
        """Stop the decoding thread (after an error elsewhere)."""
        self._source.close()


def _add_video(output: Any, encoding: Encoding, width: int, height: int, fps: int) -> Any:
    stream = output.add_stream(encoding.video_codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = Fraction(1, fps)
    stream.codec_context.gop_size = fps * 2
    stream.codec_context.options = dict(encoding.video_options)
    # The encoder's own frame threads (as many as it picks for the cores), as ffmpeg runs it.
    # They work in C without the GIL, so feeding the encoder costs this thread little and
    # the audio chain, the longest one, sets the pace. (PyAV's default is slice threads,
    # which split each small picture into slivers and cost more for less.)
    stream.codec_context.thread_type = "FRAME"
    stream.codec_context.thread_count = 0
    return stream


def _add_audio(output: Any, encoding: Encoding, layout: str) -> Any:
    stream = output.add_stream(encoding.audio_codec, rate=encoding.audio_rate, layout=layout)
    stream.format = encoding.audio_format
    # The bit rate is for one channel: a stereo file gets twice as many bits.
    stream.bit_rate = encoding.audio_bit_rate * stream.codec_context.channels
    return stream


def _step_ends(session_end: float) -> list[float]:
    """Where each stretch of the timeline ends (every ``STEP_SECONDS``, the last at the end)."""
    count = max(1, math.ceil(session_end / STEP_SECONDS - 1e-9))
    return [min(session_end, (index + 1) * STEP_SECONDS) for index in range(count)]


def _audio_packets(line: AudioLine, encoder: AudioEncoder, ends: list[float]) -> Iterator[list[Any]]:
    """The encoded packets of each stretch, then (one more item) the encoder's last ones."""
    for end in ends:
        yield encoder.write(line.read_until(round(end * line.rate)))
    line.finish()
    yield encoder.finish()


def _mux(output: Any, packets: list[Any]) -> None:
    # Stretches are short, so sorting by time keeps the file well interleaved.
    seconds = {id(p.stream): float(p.time_base) for p in packets[:1]}

    def at(packet: Any) -> float:
        unit = seconds.get(id(packet.stream))
        if unit is None:
            unit = seconds[id(packet.stream)] = float(packet.time_base)
        return packet.dts * unit if packet.dts is not None else 0.0

    packets.sort(key=at)
    for packet in packets:
        output.mux(packet)


def write_normalized(
    backend: Backend,
    track: Track,
    session_end: float,
    path: Path,
    fmt: str,
    *,
    progress: Callable[[float], None] | None = None,
    temp_dir: Path | None = None,
) -> Written:
    """Re-encode ``track`` into ``path``: time zero to ``session_end``, gaps filled."""
    encoding = ENCODINGS[fmt]
    muxer, options = MUXERS[fmt]
    with ExitStack() as stack:
        try:
            output = stack.enter_context(av.open(os.fspath(path), "w", format=muxer, options=options))
            video = audio = None
            if track.video:
                width, height, fps = _geometry(backend, track.video, temp_dir)
                stream = _add_video(output, encoding, width, height, fps)
                video = _VideoLine(backend, track.video, stream, fps, temp_dir)
                stack.callback(video.close)
            if track.audio:
                layout = _audio_layout(backend, track.audio, temp_dir)
                stream = _add_audio(output, encoding, layout)
                line = AudioLine(
                    backend, track.audio, fmt=encoding.audio_format, layout=layout,
                    rate=encoding.audio_rate, temp_dir=temp_dir,
                )
                stack.callback(line.close)
                audio = (line, AudioEncoder(stream))
        except av.error.FFmpegError as exc:
            raise ExportUnsupported(f"cannot write {fmt}: {exc}") from exc
        if video is not None:
            # End on the nearest whole frame, and the audio with it, so both stop together.
            session_end = max(1, round(session_end * video.fps)) / video.fps
        # Audio is decoded, placed and encoded on its own threads, a few stretches ahead,
        # while this one encodes the same stretch of video (both codecs release the GIL);
        # the packets of each stretch are muxed here, in order. The audio chain is the
        # longest, so it never waits for this thread between stretches.
        ends = _step_ends(session_end)
        audio_steps = None
        if audio is not None:
            audio_steps = Prefetch(_audio_packets(*audio, ends), name="export-audio-encode", depth=AUDIO_STEPS_AHEAD)
            stack.callback(audio_steps.close)
        at = 0.0
        for step_end in ends:
            packets = video.write_until(step_end) if video is not None else []
            if audio_steps is not None:
                packets += next(audio_steps)
            _mux(output, packets)
            if progress is not None:
                progress(step_end - at)
            at = step_end
        if audio_steps is not None:
            _mux(output, next(audio_steps))  # the encoder's last packets
        if video is not None:
            _mux(output, video.finish())
    return Written(0.0, session_end)
