"""``--mode copy``: one participant's pair remuxed into one seekable file, nothing re-encoded.

Every packet keeps its bytes; only its timestamps change, to its place on the
session timeline (the segment's offset plus the packet's time within the
segment). Gaps between segments stay gaps, and the audio and video streams sit
on the same clock, so they are aligned as they were recorded. The muxer writes
the duration and, for Matroska/WebM, the Cues (for MP4, the index moved to the
front) that the live-recorded originals lack, so players can seek.

Each kind's packets are demuxed and stamped in stretches of a few seconds of
timeline; the stretches go to the muxer in time order, whole, and the muxer
interleaves their packets (its queue holds about one stretch). One stretch per
kind is in memory at a time, so memory does not grow with the session's length.
All of it runs on one thread: every packet crosses the GIL in FFmpeg's demuxer
and muxer, so a second Python thread would hand the GIL back and forth once per
packet, which measured half again as much CPU for no gain in time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error

from storage_backends import Backend

from .errors import ExportUnsupported, SegmentUnreadable
from .formats import MUXERS, check_copy_codecs
from .reader import OpenSegment, open_segment, unreadable
from .timeline import Placement, Track, Written

#: Seconds of timeline per stretch handed to the muxer (also how often progress is told).
CHUNK_SECONDS = 5.0


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


@dataclass(slots=True)
class _Chunk:
    """Packets of one kind, stamped for the output, covering ``[start, end)`` of the timeline."""

    start: float
    packets: list[Any]
    end: float


class _KindPackets:
    """One kind's segments, opened one after another, as stretches of timeline-stamped packets."""

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
        #: Where the previous segment's last packet was stamped (seconds): the next may not go before it.
        self._floor: float | None = None

    @property
    def template(self) -> Any:
        """The first segment's stream, whose parameters the output stream copies."""
        return self._first.stream

    def chunks(self) -> Iterator[_Chunk]:
        """Every segment's packets, in stretches that end on a ``CHUNK_SECONDS`` boundary or a segment's end."""
        for index, placement in enumerate(self._placements):
            if index == 0:
                yield from self._segment_chunks(self._first, placement)
                continue
            with open_segment(
                self._backend, placement.segment, self._media_type, temp_dir=self._temp_dir
            ) as segment:
                yield from self._segment_chunks(segment, placement)

    def _segment_chunks(self, segment: OpenSegment, placement: Placement) -> Iterator[_Chunk]:
        """One segment's packets, stamped, then its checksum verified.

        This loop runs once per packet, so it does as little as it can: stamps move
        by one whole number of the segment's own ticks (the muxer rescales them to
        the output's time base in C), and only the stretch's end is compared.
        """
        stream = segment.stream
        if stream.codec_context.name != self.template.codec_context.name:
            raise ExportUnsupported(
                f"segment {placement.segment.key}: codec {stream.codec_context.name} "
                f"differs from the first segment's {self.template.codec_context.name}; "
                "use --mode normalize"
            )
        out_stream = self.out_stream
        tb = float(stream.time_base)
        start_ticks = round(placement.offset / tb)
        shift = None if stream.start_time is None else start_ticks - stream.start_time
        # Live-recorded video blocks carry no duration: one frame at the stream's rate,
        # so the last frame of a segment still shows for its frame time.
        rate = stream.average_rate if self._media_type == "video" else None
        default_ticks = round(1 / (float(rate) * tb)) if rate else 0
        step = round(CHUNK_SECONDS / tb)
        last = -(1 << 62) if self._floor is None else round(self._floor / tb)
        boundary = (start_ticks // step + 1) * step
        packets: list[Any] = []
        chunk_start = start_ticks
        # Input and output streams are both the first of their file for audio: no index to move.
        restream = stream.index != out_stream.index
        previous = None
        try:
            for packet in segment.container.demux(stream):
                pts = packet.pts
                dts = packet.dts
                if dts is None:
                    if pts is None:
                        continue  # the demuxer's empty flush packet
                    dts = pts
                elif pts is None:
                    pts = dts
                if shift is None:
                    shift = start_ticks - min(pts, dts)
                pts += shift
                dts += shift
                if dts <= last:  # rounding, or a stated start a hair too early
                    dts = last + 1
                    if pts < dts:
                        pts = dts
                last = dts
                packet.dts = dts
                packet.pts = pts
                if default_ticks and not packet.duration:
                    packet.duration = default_ticks
                if restream:
                    packet.stream = out_stream
                if dts >= boundary:
                    if packets:
                        yield _Chunk(chunk_start * tb, packets, _end(previous) * tb)
                        packets = []
                    chunk_start = dts
                    boundary = (dts // step + 1) * step
                packets.append(packet)
                previous = packet
        except av.error.FFmpegError as exc:
            raise unreadable(placement.segment, exc) from exc
        segment.verify()
        self._floor = last * tb
        if packets:
            yield _Chunk(chunk_start * tb, packets, _end(previous) * tb)


def _end(packet: Any) -> int:
    """Where a stamped packet ends, in its ticks."""
    return int(packet.dts + (packet.duration or 0))


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
        sources = [reader.chunks() for reader in readers]
        first: float | None = None
        last = 0.0
        reported = 0.0
        for chunk in _in_time_order(sources):
            if first is None:
                first = chunk.start
            last = max(last, chunk.end)
            try:
                output.mux(chunk.packets)
            except av.error.FFmpegError as exc:
                raise SegmentUnreadable(
                    _source_of(track, chunk.start), f"its packets cannot be remuxed ({exc})"
                ) from exc
            if progress is not None and chunk.start > reported:
                progress(chunk.start - reported)
                reported = chunk.start
        if progress is not None:
            progress(max(0.0, last - reported))
    return Written(track.start, max(last, first or 0.0))


def _in_time_order(sources: list[Iterator[_Chunk]]) -> Iterator[_Chunk]:
    """Stretches of one or two kinds, earliest start first (the first kind wins ties)."""
    heads = [next(source, None) for source in sources]
    while True:
        live = [i for i, head in enumerate(heads) if head is not None]
        if not live:
            return
        i = min(live, key=lambda k: heads[k].start)  # type: ignore[union-attr]  # live heads only
        chunk = heads[i]
        assert chunk is not None
        yield chunk
        heads[i] = next(sources[i], None)


def _source_of(track: Track, at: float) -> str:
    """The key of the segment that covers timeline second ``at`` (for error messages)."""
    for placement in track.placements:
        if placement.offset <= at <= placement.end:
            return placement.segment.key
    return track.placements[0].segment.key
