"""``--mode copy``: one participant's pair remuxed into one seekable file, nothing re-encoded.

Every packet keeps its bytes; only its timestamps change, to its place on the
session timeline (the segment's offset plus the packet's time within the
segment). Gaps between segments stay gaps, and the audio and video streams sit
on the same clock, so they are aligned as they were recorded. Packets of the two
streams are interleaved by time as they are read (two segments open at a time),
so memory does not grow with the length of the session. The muxer writes the
duration and, for Matroska/WebM, the Cues (for MP4, the index moved to the
front) that the live-recorded originals lack, so players can seek.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import av
import av.error

from storage_backends import Backend

from .errors import ExportUnsupported, SegmentUnreadable
from .formats import MUXERS, check_copy_codecs
from .reader import OpenSegment, open_segment
from .timeline import Placement, Track, Written

#: Report progress to the caller about this often (seconds of timeline).
PROGRESS_STEP = 5.0


def _codec(placements: Sequence[Placement]) -> str | None:
    """The one codec a kind's segments use, from the manifest (None when not recorded)."""
    media_type = "audio" if placements[0].is_audio else "video"
    codecs = {
        s.codec for p in placements for s in p.segment.streams if s.type == media_type
    }
    if len(codecs) > 1:
        raise ExportUnsupported(
            f"{placements[0].participant_id} {placements[0].kind}: segments use different codecs "
            f"({', '.join(sorted(codecs))}); copy mode keeps one codec per stream, use --mode normalize"
        )
    return codecs.pop() if codecs else None


class _KindPackets:
    """One kind's segments, opened one after another, as timeline-stamped packets."""

    def __init__(
        self,
        backend: Backend,
        placements: Sequence[Placement],
        stack: ExitStack,
        temp_dir: Path | None,
    ) -> None:
        self._backend = backend
        self._placements = placements
        self._temp_dir = temp_dir
        self._media_type = "audio" if placements[0].is_audio else "video"
        # The first segment is opened now: its stream is the output stream's template.
        self._first: OpenSegment = stack.enter_context(
            open_segment(backend, placements[0].segment, self._media_type, temp_dir=temp_dir)
        )
        self.out_stream: Any = None

    @property
    def template(self) -> Any:
        """The first segment's stream, whose parameters the output stream copies."""
        return self._first.stream

    def packets(self) -> Iterator[tuple[float, Any, float]]:
        """``(timeline seconds, packet, end seconds)``, pts/dts already in the output time base."""
        out_stream = self.out_stream
        out_tb = out_stream.time_base  # read once: each read builds a new Fraction
        out_seconds = float(out_tb)
        last_dts = -(1 << 62)
        for index, placement in enumerate(self._placements):
            if index == 0:
                segment, opened = self._first, None
            else:
                opened = open_segment(
                    self._backend, placement.segment, self._media_type, temp_dir=self._temp_dir
                )
                segment = opened.__enter__()
            try:
                if segment.stream.codec_context.name != self.template.codec_context.name:
                    raise ExportUnsupported(
                        f"segment {placement.segment.key}: codec {segment.stream.codec_context.name} "
                        f"differs from the first segment's {self.template.codec_context.name}; "
                        "use --mode normalize"
                    )
                tb = float(segment.stream.time_base)
                # Input ticks to output ticks: out = base + ticks * scale (one multiply-add per stamp).
                scale = tb / out_seconds
                origin = segment.stream.start_time
                base = None if origin is None else placement.offset / out_seconds - origin * scale
                # Live-recorded video blocks carry no duration: one frame at the stream's rate,
                # so the last frame of a segment still shows for its frame time.
                rate = segment.stream.average_rate if self._media_type == "video" else None
                default_ticks = round(1 / (float(rate) * tb)) if rate else 0
                for packet in segment.packets():
                    pts, dts = packet.pts, packet.dts
                    if pts is None:
                        if dts is None:
                            continue
                        pts = dts
                    elif dts is None:
                        dts = pts
                    if base is None:
                        base = placement.offset / out_seconds - min(pts, dts) * scale
                    out_dts = round(base + dts * scale)
                    out_pts = round(base + pts * scale)
                    if out_dts <= last_dts:  # rounding, or a stated start a hair too early
                        out_dts = last_dts + 1
                        out_pts = max(out_pts, out_dts)
                    last_dts = out_dts
                    duration = packet.duration or default_ticks
                    out_duration = round(duration * scale)
                    packet.duration = out_duration
                    packet.time_base = out_tb
                    packet.pts = out_pts
                    packet.dts = out_dts
                    packet.stream = out_stream
                    yield out_dts * out_seconds, packet, (out_dts + out_duration) * out_seconds
                segment.verify()
            finally:
                if opened is not None:
                    opened.__exit__(None, None, None)


def write_copy(
    backend: Backend,
    track: Track,
    path: Path,
    fmt: str,
    *,
    progress: Callable[[float], None] | None = None,
    temp_dir: Path | None = None,
) -> Written:
    """Remux ``track``'s segments into ``path`` (``fmt`` is ``mkv``, ``webm`` or ``mp4``)."""
    kinds = [p for p in (track.audio, track.video) if p]
    for placements in kinds:
        check_copy_codecs(fmt, _codec(placements), placements[0])
    muxer, options = MUXERS[fmt]
    with ExitStack() as stack:
        readers = [_KindPackets(backend, placements, stack, temp_dir) for placements in kinds]
        try:
            output = stack.enter_context(av.open(os.fspath(path), "w", format=muxer, options=options))
            for reader in readers:
                reader.out_stream = output.add_stream_from_template(reader.template)
            output.start_encoding()
        except av.error.FFmpegError as exc:
            raise ExportUnsupported(f"cannot write {fmt}: {exc}") from exc
        first: float | None = None
        last = 0.0
        reported = 0.0
        for at, packet, end in _interleave([reader.packets() for reader in readers]):
            if first is None:
                first = at
            if end > last:
                last = end
            try:
                output.mux(packet)
            except av.error.FFmpegError as exc:
                raise SegmentUnreadable(
                    _source_of(track, at), f"its packets cannot be remuxed ({exc})"
                ) from exc
            if progress is not None and at - reported >= PROGRESS_STEP:
                progress(at - reported)
                reported = at
        if progress is not None:
            progress(max(0.0, last - reported))
    return Written(track.start, max(last, first or 0.0))


def _interleave(
    streams: list[Iterator[tuple[float, Any, float]]],
) -> Iterator[tuple[float, Any, float]]:
    """Packets of one or two streams in time order (the first stream wins ties)."""
    if len(streams) == 1:
        yield from streams[0]
        return
    first, second = streams
    a, b = next(first, None), next(second, None)
    while a is not None and b is not None:
        if a[0] <= b[0]:
            yield a
            a = next(first, None)
        else:
            yield b
            b = next(second, None)
    if a is not None:
        yield a
        yield from first
    if b is not None:
        yield b
        yield from second


def _source_of(track: Track, at: float) -> str:
    """The key of the segment that covers timeline second ``at`` (for error messages)."""
    for placement in track.placements:
        if placement.offset <= at <= placement.end:
            return placement.segment.key
    return track.placements[0].segment.key
