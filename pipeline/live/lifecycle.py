"""Each track recording's lifecycle, folded from webhooks that arrive in any order.

Deliveries carry no timestamp and may be duplicated or reordered, so a track's
state is the furthest stage it has reached (:attr:`Lifecycle.rank`:
``starting`` < ``started`` < ``stopping`` < ``failed`` < ``stopped``), never
the last one received: a late ``-started`` cannot undo a ``-stopped``. The
manifests fold stages by the same order. A track that has not reached
``stopped`` or ``failed`` some time after it was first seen is *stuck*.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..events import TYPE_PREFIX, Lifecycle
from ..journal import EventRecord

TERMINAL = frozenset({Lifecycle.STOPPED, Lifecycle.FAILED})

TrackKey = tuple[str, str, str]  # (sessionId, participantId, kind)


@dataclass
class TrackLifecycle:
    """What is known about one (session, participant, kind) recording."""

    state: Lifecycle
    first_seen: datetime
    last_seen: datetime
    seen: dict[str, int] = field(default_factory=dict)

    def observe(self, stage: Lifecycle, at: datetime) -> None:
        """Fold one more delivery in."""
        if stage.rank > self.state.rank:
            self.state = stage
        self.first_seen = min(self.first_seen, at)
        self.last_seen = max(self.last_seen, at)
        self.seen[stage.value] = self.seen.get(stage.value, 0) + 1

    def is_stuck(self, now: datetime, after: timedelta) -> bool:
        """Started (or starting) long ago and still not stopped or failed."""
        return self.state not in TERMINAL and now - self.first_seen > after

    def as_json(self, now: datetime, after: timedelta) -> dict[str, object]:
        """The form ``GET /sessions/{id}`` answers with."""
        return {
            "state": self.state.value,
            "seen": dict(sorted(self.seen.items(), key=lambda kv: Lifecycle(kv[0]).rank)),
            "firstSeen": self.first_seen.isoformat(),
            "lastSeen": self.last_seen.isoformat(),
            "stuck": self.is_stuck(now, after),
        }


def stage_of(webhook_type: str) -> Lifecycle | None:
    """The lifecycle stage a webhook type reports, or ``None`` for other types."""
    if not webhook_type.startswith(TYPE_PREFIX):
        return None
    try:
        return Lifecycle(webhook_type.removeprefix(TYPE_PREFIX))
    except ValueError:
        return None


def fold(events: Iterable[EventRecord]) -> dict[TrackKey, TrackLifecycle]:
    """Every track's lifecycle from journaled deliveries, whatever their order."""
    tracks: dict[TrackKey, TrackLifecycle] = {}
    for event in events:
        stage = stage_of(event.webhook_type)
        if stage is None or not (event.session_id and event.participant_id and event.kind):
            continue
        key = (event.session_id, event.participant_id, event.kind)
        current = tracks.get(key)
        if current is None:
            tracks[key] = TrackLifecycle(stage, event.received_at, event.received_at)
            tracks[key].seen[stage.value] = 1
        else:
            current.observe(stage, event.received_at)
    return tracks


class StuckWatch:
    """Tracks not yet finished, kept in memory so the workers can warn about stuck ones.

    Each stuck track is reported once; it is forgotten when it reaches a
    terminal stage. Open tracks wait in a heap ordered by when they were first
    seen, so a check visits only the tracks that became stuck since the last
    one, not every open track: a busy receiver's loop never stalls on it.
    """

    def __init__(self, after: timedelta) -> None:
        self.after = after
        self._open: dict[TrackKey, TrackLifecycle] = {}
        self._reported: set[TrackKey] = set()
        # Finished tracks are remembered so a late, reordered "-started" cannot reopen them.
        self._finished: set[TrackKey] = set()
        # (first seen, arrival number, key) of open tracks; an entry whose time is no longer
        # its track's first sighting (an earlier one came in) is skipped when it comes up.
        self._due: list[tuple[datetime, int, TrackKey]] = []
        self._arrivals = 0
        self._lock = threading.Lock()

    def _schedule(self, key: TrackKey, first_seen: datetime) -> None:
        self._arrivals += 1
        heapq.heappush(self._due, (first_seen, self._arrivals, key))

    def seed(self, events: Iterable[EventRecord]) -> None:
        """Start from what the journal already holds (after a restart)."""
        with self._lock:
            for key, track in fold(events).items():
                if track.state in TERMINAL:
                    self._finished.add(key)
                else:
                    self._open[key] = track
                    self._schedule(key, track.first_seen)

    def observe(self, key: TrackKey, stage: Lifecycle, at: datetime | None = None) -> None:
        """One accepted delivery."""
        at = at or datetime.now(UTC)
        with self._lock:
            if key in self._finished:
                return
            track = self._open.get(key)
            if track is None:
                track = TrackLifecycle(stage, at, at)
                track.seen[stage.value] = 1
                scheduled = None
            else:
                scheduled = track.first_seen
                track.observe(stage, at)
            if track.state in TERMINAL:
                self._open.pop(key, None)
                self._reported.discard(key)
                self._finished.add(key)
                return
            self._open[key] = track
            if track.first_seen != scheduled:
                self._schedule(key, track.first_seen)

    def newly_stuck(self, now: datetime | None = None) -> list[tuple[TrackKey, TrackLifecycle]]:
        """Stuck tracks not reported before (each is returned once)."""
        now = now or datetime.now(UTC)
        found = []
        with self._lock:
            due = self._due
            while due and now - due[0][0] > self.after:
                first_seen, _, key = heapq.heappop(due)
                track = self._open.get(key)
                if track is None or track.first_seen != first_seen or key in self._reported:
                    continue  # finished, seen earlier than this entry says, or reported
                if track.is_stuck(now, self.after):
                    self._reported.add(key)
                    found.append((key, track))
        return found
