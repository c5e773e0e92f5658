"""The session timeline: where every archived segment sits in time.

Time zero is the earliest known segment start in the session. Each segment's
start comes from, in this order:

1. ``name``: the epoch milliseconds in the service's file name (``startedAtMs``);
2. ``media``: the start time the media itself states (``startedAt`` without
   ``startedAtMs``: Matroska ``DateUTC`` or MP4 ``creation_time``);
3. ``arrival``: neither is known, so the segment follows the previous segment of
   the same track (in arrival order) without a gap, or starts at time zero when
   it is the track's first.

Within a segment, the media's own timestamps place its packets. A segment whose
stated start falls before the end of the previous one on the same track (clocks
disagree by a little) is moved to that end, so one track never overlaps itself;
the move is recorded in ``shiftedSeconds``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..manifest import Manifest, Segment

#: Track pairs exported together: the camera (microphone + camera) and the screen share.
PAIRS: dict[str, tuple[str, str]] = {
    "camera": ("audio", "video"),
    "screen": ("screen_audio", "screen_video"),
}
KINDS = tuple(kind for pair in PAIRS.values() for kind in pair)
AUDIO_KINDS = frozenset({"audio", "screen_audio"})
#: A stated start this close to the previous segment's end counts as touching it.
_OVERLAP_TOLERANCE = 0.001


def pair_of(kind: str) -> str | None:
    """The pair (``camera`` or ``screen``) a kind belongs to, or None for unknown kinds."""
    for pair, kinds in PAIRS.items():
        if kind in kinds:
            return pair
    return None


def _stated_start_ms(segment: Segment) -> tuple[int | None, str]:
    if segment.startedAtMs is not None:
        return segment.startedAtMs, "name"
    if segment.startedAt is not None:
        return round(segment.startedAt.timestamp() * 1000), "media"
    return None, "arrival"


@dataclass(frozen=True, slots=True)
class Placement:
    """One segment on the session timeline."""

    participant_id: str
    kind: str
    segment: Segment
    #: Seconds from time zero to the segment's first packet.
    offset: float
    #: Seconds of media (as the archive measured it from the packets).
    duration: float
    #: Where the start came from: ``name``, ``media`` or ``arrival``.
    source: str
    #: How far the segment was moved later to avoid overlapping its predecessor.
    shifted: float = 0.0

    @property
    def end(self) -> float:
        """Seconds from time zero to the end of the segment."""
        return self.offset + self.duration

    @property
    def is_audio(self) -> bool:
        """Whether the segment is a microphone or screen-share audio track."""
        return self.kind in AUDIO_KINDS


@dataclass(frozen=True, slots=True)
class Written:
    """Where an export's media starts and ends, in seconds on the session timeline."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Track:
    """One participant's pair (``camera`` or ``screen``): its audio and video segments."""

    participant_id: str
    pair: str
    audio: tuple[Placement, ...] = ()
    video: tuple[Placement, ...] = ()

    @property
    def placements(self) -> tuple[Placement, ...]:
        """Every segment of the pair, audio first."""
        return self.audio + self.video

    @property
    def start(self) -> float:
        """Seconds from time zero to the pair's first packet."""
        return min(p.offset for p in self.placements)

    @property
    def end(self) -> float:
        """Seconds from time zero to the pair's last packet's end."""
        return max(p.end for p in self.placements)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Every exported track of a session, placed relative to time zero."""

    session_id: str
    #: Epoch milliseconds of time zero, None when no segment states its start.
    zero_ms: int | None
    tracks: tuple[Track, ...] = field(default_factory=tuple)

    @property
    def end(self) -> float:
        """Seconds from time zero to the end of the last segment: the session's length."""
        return max((t.end for t in self.tracks), default=0.0)

    def placements(self) -> list[Placement]:
        """Every placed segment of every track."""
        return [p for track in self.tracks for p in track.placements]


def _place_kind(
    participant_id: str,
    kind: str,
    segments: Sequence[Segment],
    zero_ms: int | None,
    durations: dict[str, float],
) -> tuple[Placement, ...]:
    placed: list[Placement] = []
    timed = [s for s in segments if _stated_start_ms(s)[0] is not None]
    untimed = sorted((s for s in segments if _stated_start_ms(s)[0] is None), key=lambda s: s.arrival)
    timed.sort(key=lambda s: (_stated_start_ms(s)[0], s.arrival))
    ordered = _interleave_by_arrival(timed, untimed)
    previous_end = 0.0
    for segment in ordered:
        stated, source = _stated_start_ms(segment)
        duration = durations.get(segment.key, segment.durationSeconds or 0.0)
        if stated is None or zero_ms is None:
            offset = previous_end if placed else 0.0
            source = "arrival"
        else:
            offset = (stated - zero_ms) / 1000
        shifted = 0.0
        if placed and offset < previous_end - _OVERLAP_TOLERANCE:
            shifted = previous_end - offset
            offset = previous_end
        placed.append(
            Placement(participant_id, kind, segment, round(offset, 6), duration, source, round(shifted, 6))
        )
        previous_end = max(previous_end, offset + duration)
    return tuple(placed)


def _interleave_by_arrival(timed: list[Segment], untimed: list[Segment]) -> list[Segment]:
    """Timed segments in start order, each untimed one right after the segment that arrived before it."""
    if not untimed:
        return timed
    result = list(timed)
    for segment in untimed:
        before = [i for i, s in enumerate(result) if s.arrival <= segment.arrival]
        result.insert(before[-1] + 1 if before else 0, segment)
    return result


def build_timeline(
    manifest: Manifest,
    *,
    participants: Iterable[str] = (),
    kinds: Iterable[str] = (),
    durations: dict[str, float] | None = None,
) -> Timeline:
    """Place the manifest's segments (optionally only some participants and kinds).

    Time zero is always the earliest start of the whole session, whatever the
    filters, so exports of different participants line up. ``durations``
    overrides the manifest's durations by key (for segments archived without one).
    """
    durations = durations or {}
    wanted_pids, wanted_kinds = set(participants), set(kinds)
    starts = [
        start
        for _, kind, seg in manifest.segments()
        if kind in KINDS and (start := _stated_start_ms(seg)[0]) is not None
    ]
    zero_ms = min(starts) if starts else None
    tracks: list[Track] = []
    for pid, by_kind in manifest.participants.items():
        if wanted_pids and pid not in wanted_pids:
            continue
        for pair, (audio_kind, video_kind) in PAIRS.items():
            placed = {
                kind: _place_kind(pid, kind, by_kind.get(kind, []), zero_ms, durations)
                for kind in (audio_kind, video_kind)
                if not wanted_kinds or kind in wanted_kinds
            }
            audio, video = placed.get(audio_kind, ()), placed.get(video_kind, ())
            if audio or video:
                tracks.append(Track(pid, pair, audio, video))
    return Timeline(manifest.sessionId, zero_ms, tuple(tracks))
