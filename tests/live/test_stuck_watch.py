"""Which open recordings the receiver reports as stuck, and when (the watch on its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.events import Lifecycle
from pipeline.journal import EventRecord
from pipeline.live.lifecycle import StuckWatch

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
AFTER = timedelta(minutes=10)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def stuck_keys(watch: StuckWatch, minutes: float) -> list[tuple[str, str, str]]:
    return [key for key, _ in watch.newly_stuck(at(minutes))]


def test_each_open_track_is_reported_once_when_its_time_has_passed() -> None:
    watch = StuckWatch(AFTER)
    watch.observe(("s", "a", "audio"), Lifecycle.STARTED, at(0))
    watch.observe(("s", "b", "audio"), Lifecycle.STARTING, at(3))
    watch.observe(("s", "a", "audio"), Lifecycle.STOPPING, at(4))
    assert stuck_keys(watch, 9) == []
    assert stuck_keys(watch, 11) == [("s", "a", "audio")]
    assert stuck_keys(watch, 12) == []
    assert stuck_keys(watch, 14) == [("s", "b", "audio")]
    assert stuck_keys(watch, 60) == []


def test_a_finished_track_is_never_reported_and_cannot_be_reopened() -> None:
    watch = StuckWatch(AFTER)
    key = ("s", "a", "video")
    watch.observe(key, Lifecycle.STARTED, at(0))
    watch.observe(key, Lifecycle.STOPPED, at(2))
    watch.observe(key, Lifecycle.STARTED, at(3))  # late and reordered
    assert stuck_keys(watch, 30) == []


def test_a_stuck_track_that_finishes_and_the_next_one_are_handled_apart() -> None:
    watch = StuckWatch(AFTER)
    watch.observe(("s", "a", "audio"), Lifecycle.STARTED, at(0))
    assert stuck_keys(watch, 11) == [("s", "a", "audio")]
    watch.observe(("s", "a", "audio"), Lifecycle.FAILED, at(12))
    watch.observe(("s", "b", "audio"), Lifecycle.STARTED, at(12))
    assert stuck_keys(watch, 23) == [("s", "b", "audio")]


def test_an_earlier_sighting_arriving_late_makes_the_track_stuck_sooner() -> None:
    watch = StuckWatch(AFTER)
    key = ("s", "a", "audio")
    watch.observe(key, Lifecycle.STARTED, at(5))
    watch.observe(key, Lifecycle.STARTING, at(1))  # the earlier delivery came in second
    assert stuck_keys(watch, 12) == [key]
    assert stuck_keys(watch, 16) == []


def test_tracks_seeded_from_the_journal_are_watched_like_new_ones() -> None:
    def record(n: int, stage: str, participant: str, minutes: float) -> EventRecord:
        return EventRecord(
            event_id=f"e{n}",
            webhook_type=f"participant-track-recording-{stage}",
            session_id="s",
            participant_id=participant,
            kind="audio",
            payload={},
            source="webhook",
            received_at=at(minutes),
            processed=True,
            manifested=True,
        )

    watch = StuckWatch(AFTER)
    watch.seed(
        [
            record(1, "started", "a", 0),
            record(2, "started", "b", 2),
            record(3, "stopped", "b", 4),
            record(4, "starting", "c", 6),
        ]
    )
    assert stuck_keys(watch, 11) == [("s", "a", "audio")]
    assert stuck_keys(watch, 17) == [("s", "c", "audio")]
