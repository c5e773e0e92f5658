"""Where each segment sits on the session timeline, and where its start came from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.export import build_timeline
from pipeline.manifest import Manifest, ManifestUpdate, Segment, merge

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _segment(name: str, arrival: int, seconds: float, *, name_at: float | None = None,
             media_at: float | None = None) -> Segment:  # fmt: skip
    named = T0 + timedelta(seconds=name_at) if name_at is not None else None
    media = T0 + timedelta(seconds=media_at) if media_at is not None else None
    return Segment(
        key=f"s/p/k/{name}", filename=name, sourceUrl=f"https://cdn/{name}", size=1,
        sha256="0" * 64, crc32c="AAAAAA==", durationSeconds=seconds,
        startedAt=named or media,
        startedAtMs=int(named.timestamp() * 1000) if named else None,
        archivedAt=T0, arrival=arrival,
    )  # fmt: skip


def _manifest(*entries: tuple[str, str, Segment]) -> Manifest:
    return merge(None, ManifestUpdate(session_id="s", segments=list(entries)))


def test_starts_come_from_the_name_then_the_media_then_arrival() -> None:
    manifest = _manifest(
        ("alice", "audio", _segment("a1", 1, 2.0, name_at=10.0)),
        ("alice", "audio", _segment("a2", 2, 1.0, media_at=13.0)),
        ("alice", "audio", _segment("a3", 3, 1.5)),
        ("alice", "video", _segment("v1", 4, 2.0, name_at=10.7)),
    )
    timeline = build_timeline(manifest)
    assert timeline.zero_ms == int((T0 + timedelta(seconds=10)).timestamp() * 1000)
    (track,) = timeline.tracks
    assert [(p.segment.filename, p.offset, p.source) for p in track.audio] == [
        ("a1", 0.0, "name"),
        ("a2", 3.0, "media"),
        # No time at all: right after the segment that arrived before it.
        ("a3", 4.0, "arrival"),
    ]
    assert [(p.offset, p.source) for p in track.video] == [(0.7, "name")]
    assert timeline.end == pytest.approx(5.5)


def test_a_segment_stated_to_start_inside_the_previous_one_is_moved_after_it() -> None:
    manifest = _manifest(
        ("bob", "audio", _segment("b1", 1, 2.0, name_at=0.0)),
        ("bob", "audio", _segment("b2", 2, 2.0, name_at=1.5)),
    )
    (track,) = build_timeline(manifest).tracks
    assert [(p.offset, p.shifted) for p in track.audio] == [(0.0, 0.0), (2.0, 0.5)]


def test_filters_keep_the_whole_sessions_time_zero_and_pair_kinds() -> None:
    manifest = _manifest(
        ("alice", "audio", _segment("a1", 1, 1.0, name_at=0.0)),
        ("bob", "audio", _segment("b1", 2, 1.0, name_at=4.0)),
        ("bob", "screen_video", _segment("s1", 3, 1.0, name_at=5.0)),
        ("bob", "screen_audio", _segment("s2", 4, 1.0, name_at=5.0)),
    )
    timeline = build_timeline(manifest, participants=["bob"], kinds=["screen_video", "audio"])
    assert [(t.participant_id, t.pair) for t in timeline.tracks] == [("bob", "camera"), ("bob", "screen")]
    camera, screen = timeline.tracks
    assert camera.audio[0].offset == 4.0 and camera.video == ()
    assert screen.video[0].offset == 5.0 and screen.audio == ()


def test_a_session_without_any_stated_time_starts_each_track_at_zero() -> None:
    manifest = _manifest(
        ("carol", "audio", _segment("c1", 2, 1.0)),
        ("carol", "audio", _segment("c0", 1, 2.0)),
    )
    timeline = build_timeline(manifest)
    assert timeline.zero_ms is None
    assert [(p.segment.filename, p.offset) for p in timeline.tracks[0].audio] == [("c0", 0.0), ("c1", 2.0)]
