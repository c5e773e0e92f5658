"""Verify a recording as media: container, every packet demuxed, streams, duration.

FFmpeg (through PyAV) reads every packet without decoding, which touches the whole file
cheaply; the header's declared sizes come from ``container`` in pure Python, because
FFmpeg tolerates a cut file and says nothing about it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from pipeline.checks import Check, first_failure
from pipeline.media.container import ContainerInfo, find_structure_fault, sniff_container

AUDIO_KINDS = frozenset({"audio", "screen_audio"})
VIDEO_KINDS = frozenset({"video", "screen_video"})

# FFmpeg demuxer per recognised container: naming it stops FFmpeg from guessing among
# hundreds of formats on bytes a stranger sent us.
_DEMUXERS = {"webm": "matroska", "matroska": "matroska", "mp4": "mov", "mov": "mov"}
# Only the local file may be opened: a crafted file must not lead FFmpeg to other URLs.
_DEMUX_OPTIONS = {"protocol_whitelist": "file"}


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One stream as demuxed: its type and codec, and what its packets cover."""

    type: str  # "audio", "video", "subtitle", "data"
    codec: str
    index: int = 0
    packets: int = 0
    duration_seconds: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class MediaReport:
    """What one media file turned out to be, with every check that was made on it."""

    container: str | None
    streams: list[StreamInfo] = field(default_factory=list)
    duration_seconds: float | None = None  # measured from the packets
    declared_duration: float | None = None  # stated by the header, when it does
    started_at: datetime | None = None  # stated by the media (DateUTC / creation_time)
    packets: int = 0
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(check.ok for check in self.checks)

    @property
    def failure(self) -> Check | None:
        """The first failed check: the reason to refuse the file."""
        return first_failure(self.checks)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for manifests and ``--json`` output."""
        return {
            "container": self.container,
            "streams": [{"type": s.type, "codec": s.codec} for s in self.streams],
            "duration_seconds": self.duration_seconds,
            "declared_duration": self.declared_duration,
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "packets": self.packets,
            "ok": self.ok,
            "checks": [check.as_dict() for check in self.checks],
        }


@dataclass(slots=True)
class _StreamTally:
    count: int = 0
    first: int | None = None
    end: int | None = None


def inspect_media(
    path: Path,
    *,
    kind: str | None = None,
    expected_duration: float | None = None,
    duration_tolerance: float = 0.5,
) -> MediaReport:
    """Demux every packet of ``path`` and check it is whole media of the given ``kind``.

    Bad media never raises: every problem becomes a failed check in the report. A path
    that does not exist is the caller's mistake and raises ``FileNotFoundError``.
    """
    path = Path(path)
    info = sniff_container(path)
    checks = [_container_check(info)]
    if info.name is None:
        return MediaReport(container=None, checks=checks)
    if info.is_matroska:
        checks.append(_segment_check(info))
    checks.append(_structure_check(path, info))

    demuxed = _demux(path, _DEMUXERS[info.name])
    checks.append(
        Check("demux", demuxed.error is None, "every packet read", demuxed.error or "all read")
    )
    checks.append(
        Check(
            "packets",
            demuxed.packets > 0,
            "at least one packet",
            demuxed.packets,
            None if demuxed.packets else "no media data in the file",
        )
    )
    if kind is not None:
        checks.append(_kind_check(kind, demuxed.streams))

    declared = info.declared_duration if info.is_matroska else demuxed.header_duration
    measured = demuxed.duration
    checks.append(_duration_check(measured, declared, duration_tolerance))
    if expected_duration is not None:
        checks.append(
            Check(
                "expected-duration",
                measured is not None and abs(measured - expected_duration) <= duration_tolerance,
                expected_duration,
                measured,
                f"tolerance {duration_tolerance} s",
            )
        )
    return MediaReport(
        container=info.name,
        streams=demuxed.streams,
        duration_seconds=measured,
        declared_duration=declared,
        started_at=info.date_utc or demuxed.creation_time,
        packets=demuxed.packets,
        checks=checks,
    )


def _container_check(info: ContainerInfo) -> Check:
    found = info.name or info.doctype or info.brand
    return Check("container", info.name is not None, "webm, matroska or mp4", found, info.detail)


def _segment_check(info: ContainerInfo) -> Check:
    end = info.segment_end
    found = f"file has {info.file_size} bytes"
    detail: str | None
    if end is None:
        detail = "Segment size unknown, as live recorders write it"
        return Check("segment-size", True, "unknown size", found, detail)
    if end > info.file_size:
        detail = f"{end - info.file_size} bytes missing"
    elif end < info.file_size:
        detail = f"{info.file_size - end} bytes follow the Segment"
    else:
        detail = None
    return Check(
        "segment-size", end <= info.file_size, f"Segment ends at byte {end}", found, detail
    )


def _structure_check(path: Path, info: ContainerInfo) -> Check:
    unit = "element" if info.is_matroska else "box"
    fault = find_structure_fault(path, info)
    if fault is None:
        return Check("structure", True, f"every {unit} whole", "all whole")
    detail = "the file was cut short" if fault.cut else "the data is damaged"
    return Check("structure", False, f"every {unit} whole", fault.describe(info.file_size), detail)


def _kind_check(kind: str, streams: list[StreamInfo]) -> Check:
    types = sorted({s.type for s in streams})
    found = "+".join(types) or "no streams"
    if kind in AUDIO_KINDS:
        ok = "audio" in types and "video" not in types
        return Check("kind", ok, f"{kind}: audio and no video", found)
    if kind in VIDEO_KINDS:
        return Check("kind", "video" in types, f"{kind}: a video stream", found)
    return Check("kind", False, "audio, video, screen_audio or screen_video", kind, "unknown kind")


def _duration_check(measured: float | None, declared: float | None, tolerance: float) -> Check:
    if measured is None:
        return Check("duration", False, declared, None, "no timed packets to measure")
    if declared is None:
        return Check("duration", True, None, measured, "no duration in the header; measured")
    ok = measured >= declared - tolerance
    detail = None if ok else f"media ends {declared - measured:.3f} s before the declared end"
    return Check("duration", ok, declared, measured, detail)


@dataclass(slots=True)
class _Demuxed:
    streams: list[StreamInfo]
    packets: int
    duration: float | None
    header_duration: float | None
    creation_time: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class _StreamFacts:
    """Plain copies of a stream's attributes: PyAV objects must not outlive their container."""

    index: int
    type: str
    codec: str
    time_base: Fraction | None
    sample_rate: int | None
    channels: int | None
    width: int | None
    height: int | None


def _demux(path: Path, demuxer: str) -> _Demuxed:
    facts: list[_StreamFacts] = []
    tallies: dict[int, _StreamTally] = {}
    header_duration: float | None = None
    creation_time: datetime | None = None
    error: str | None = None
    try:
        with av.open(os.fspath(path), format=demuxer, options=_DEMUX_OPTIONS) as container:
            facts = [_facts(stream) for stream in container.streams]
            tallies = {f.index: _StreamTally() for f in facts}
            if container.duration is not None and container.duration > 0:
                header_duration = container.duration / av.time_base
            creation_time = _parse_time(container.metadata.get("creation_time"))
            for packet in container.demux():
                _tally(tallies, packet)
    except (av.FFmpegError, ValueError, OSError) as exc:
        # PyAV raises FFmpeg failures as av.FFmpegError subclasses that also inherit
        # OSError/ValueError; a report is the translation callers want here.
        error = f"{type(exc).__name__}: {_reason(exc)}"
    return _Demuxed(
        streams=[_stream_info(f, tallies.get(f.index, _StreamTally())) for f in facts],
        packets=sum(t.count for t in tallies.values()),
        duration=_overall_duration(facts, tallies),
        header_duration=header_duration,
        creation_time=creation_time,
        error=error,
    )


def _reason(exc: Exception) -> str:
    # FFmpeg errors carry the staging path in str(exc); the reason alone reads better.
    reason = getattr(exc, "strerror", None)
    return reason if isinstance(reason, str) and reason else str(exc)


def _facts(stream: Any) -> _StreamFacts:
    context = stream.codec_context
    audio = stream.type == "audio"
    video = stream.type == "video"
    return _StreamFacts(
        index=stream.index,
        type=stream.type,
        codec=context.name if context is not None else "unknown",
        time_base=stream.time_base,
        sample_rate=context.sample_rate if audio and context is not None else None,
        channels=context.channels if audio and context is not None else None,
        width=context.width if video and context is not None else None,
        height=context.height if video and context is not None else None,
    )


def _tally(tallies: dict[int, _StreamTally], packet: Any) -> None:
    # PyAV yields one empty packet per stream at the end to flush decoders: not media.
    if packet.size == 0:
        return
    tally = tallies.get(packet.stream_index)
    if tally is None:
        return
    tally.count += 1
    stamp = packet.pts if packet.pts is not None else packet.dts
    if stamp is None:
        return
    end = stamp + (packet.duration or 0)
    if tally.first is None or stamp < tally.first:
        tally.first = stamp
    if tally.end is None or end > tally.end:
        tally.end = end


def _span(facts: _StreamFacts, tally: _StreamTally) -> tuple[float, float] | None:
    if tally.first is None or tally.end is None or not facts.time_base:
        return None
    return float(tally.first * facts.time_base), float(tally.end * facts.time_base)


def _overall_duration(facts: list[_StreamFacts], tallies: dict[int, _StreamTally]) -> float | None:
    spans = [_span(f, tallies[f.index]) for f in facts if f.index in tallies]
    known = [span for span in spans if span is not None]
    if not known:
        return None
    return round(max(end for _, end in known) - min(start for start, _ in known), 6)


def _stream_info(facts: _StreamFacts, tally: _StreamTally) -> StreamInfo:
    span = _span(facts, tally)
    return StreamInfo(
        type=facts.type,
        codec=facts.codec,
        index=facts.index,
        packets=tally.count,
        duration_seconds=None if span is None else round(span[1] - span[0], 6),
        sample_rate=facts.sample_rate,
        channels=facts.channels,
        width=facts.width,
        height=facts.height,
    )


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
