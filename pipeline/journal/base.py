"""The journal contract: durable record of deliveries and of each segment's state.

The archiver, the live receiver and its workers share one journal. SQLite on
one machine is the default implementation; anything that offers these
operations atomically (a database table, a queue with a key-value store) can
take its place.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..segment import StoredSegment
from .results import Refusal, VerifiedDownload


class SegmentState(StrEnum):
    """Where a segment is on its way into the archive."""

    PENDING = "pending"  # known, not yet being worked on
    ACTIVE = "active"  # claimed by a worker holding a lease
    DONE = "done"  # stored at its key and verified
    FAILED = "failed"  # refused; bytes quarantined, reason recorded


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One webhook delivery as committed to the journal."""

    event_id: str
    webhook_type: str
    session_id: str | None
    participant_id: str | None
    kind: str | None
    payload: dict[str, Any]
    source: str
    received_at: datetime
    processed: bool
    manifested: bool


@dataclass(frozen=True, slots=True)
class NewSegment:
    """A file named by a stopped webhook, before any work on it."""

    segment_id: str
    session_id: str
    meeting_id: str | None
    participant_id: str
    kind: str
    source_url: str
    source_path: str | None
    filename: str
    key: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A validated delivery ready to commit, serialized once (``payload_json``).

    ``segments`` ``None``: expand it later (:meth:`Journal.unprocessed_events`).
    A tuple (maybe empty): its segment jobs, committed with it in one step, so
    it needs no expansion afterwards.
    """

    event_id: str
    webhook_type: str
    payload_json: str
    source: str
    session_id: str | None = None
    participant_id: str | None = None
    kind: str | None = None
    segments: tuple[NewSegment, ...] | None = None


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """A segment's journal row."""

    segment_id: str
    session_id: str
    meeting_id: str | None
    participant_id: str
    kind: str
    source_url: str
    source_path: str | None
    filename: str
    key: str
    arrival: int
    state: SegmentState
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    manifested: bool
    updated_at: datetime
    #: Unexpected failures since it was last queued by hand (bounds its retries).
    failures: int = 0

    @property
    def stored(self) -> StoredSegment | None:
        """The stored segment of a done row (rows earlier versions wrote load too)."""
        if self.state is not SegmentState.DONE or not self.result:
            return None
        return StoredSegment.from_json(self.result)

    @property
    def refusal(self) -> Refusal | None:
        """Why a failed row's bytes are not archived (``None`` unless the row failed)."""
        if self.state is not SegmentState.FAILED:
            return None
        return Refusal.from_json(self.result)

    @property
    def verified(self) -> VerifiedDownload | None:
        """The verified download a worker noted before storing it (see ``note_verified``)."""
        return VerifiedDownload.from_json(self.result)


class Journal(ABC):
    """Durable, concurrency-safe state shared by every worker of one archive."""

    @abstractmethod
    def record_event(
        self,
        *,
        event_id: str,
        webhook_type: str,
        payload: dict[str, Any],
        source: str,
        session_id: str | None = None,
        participant_id: str | None = None,
        kind: str | None = None,
    ) -> bool:
        """Commit a delivery durably; ``False`` when this exact delivery was seen before."""

    def record_events(self, events: list[NewEvent]) -> list[bool]:
        """Commit several deliveries durably, together where the journal can.

        One flag per delivery, as :meth:`record_event` answers. A new delivery
        that carries its ``segments`` has them queued and is marked processed.
        Journals that can should override this with one transaction (see
        ``GroupCommitter``).
        """
        flags = []
        for e in events:
            new = self.record_event(
                event_id=e.event_id,
                webhook_type=e.webhook_type,
                payload=json.loads(e.payload_json),
                source=e.source,
                session_id=e.session_id,
                participant_id=e.participant_id,
                kind=e.kind,
            )
            if new and e.segments is not None:
                self.add_segments(e.event_id, list(e.segments))
            flags.append(new)
        return flags

    @abstractmethod
    def unprocessed_events(self, limit: int = 1000) -> list[EventRecord]:
        """Deliveries not yet turned into segments, oldest first."""

    @abstractmethod
    def add_segments(
        self, event_id: str, segments: list[NewSegment], *, retry_failed: bool = False
    ) -> int:
        """Record an event's segments (existing ones are kept) and mark it processed.

        With ``retry_failed`` a segment that failed before goes back to pending.
        Returns how many segments were new or re-queued.
        """

    @abstractmethod
    def claim(
        self, worker: str, *, lease_seconds: float, session_id: str | None = None
    ) -> SegmentRecord | None:
        """Atomically take the oldest claimable segment, or ``None``.

        Claimable: pending and not waiting for a retry, or active under a
        lease that ran out or a worker that died. The claim costs the same
        however many segments are pending.
        """

    @abstractmethod
    def finish(
        self,
        segment_id: str,
        worker: str,
        state: SegmentState,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Record the outcome of a segment ``worker`` holds.

        ``result`` is the outcome's journal form: a done segment's
        ``StoredSegment.to_json()``, a failed one's ``Refusal.to_json()``.

        Returns ``False`` and records nothing when ``worker`` no longer holds
        it (its lease ran out and another worker took the segment over).
        """

    @abstractmethod
    def retry_later(self, segment_id: str, worker: str, *, delay: float, error: str) -> bool:
        """Give a held segment back after an unexpected failure; claimable again after ``delay`` s.

        Counts the failure in ``SegmentRecord.failures`` and keeps ``error``.
        Returns ``False`` when ``worker`` no longer holds the segment.
        """

    @abstractmethod
    def note_verified(self, segment_id: str, worker: str, verified: VerifiedDownload) -> None:
        """Remember a claimed segment's verified download before it is stored.

        A worker that dies between storing and ``finish`` leaves this behind,
        so the next claimant can recognise the stored object (or reuse the
        staged file) instead of downloading again.
        """

    @abstractmethod
    def release(self, segment_id: str, worker: str) -> None:
        """Give a claimed segment back (the worker is stopping)."""

    @abstractmethod
    def segments(
        self, *, session_id: str | None = None, states: tuple[SegmentState, ...] = ()
    ) -> list[SegmentRecord]:
        """Segments, optionally of one session and in some states, in arrival order."""

    @abstractmethod
    def events(self, *, session_id: str | None = None) -> list[EventRecord]:
        """Deliveries, optionally of one session, in arrival order."""

    def unmanifested_events(self, session_id: str) -> list[EventRecord]:
        """A session's processed deliveries not yet merged into its manifest, in arrival order.

        Journals should override this with a query: a session collects many
        deliveries, and a manifest merge must not re-read the ones it already holds.
        """
        return [e for e in self.events(session_id=session_id) if e.processed and not e.manifested]

    def unmanifested_segments(self, session_id: str) -> list[SegmentRecord]:
        """A session's done and failed segments not yet merged into its manifest, in arrival order.

        Journals should override this with a query, as :meth:`unmanifested_events`.
        """
        settled = (SegmentState.DONE, SegmentState.FAILED)
        return [s for s in self.segments(session_id=session_id, states=settled) if not s.manifested]

    @abstractmethod
    def unmanifested_sessions(self) -> list[str]:
        """Sessions with outcomes or events not yet merged into their manifest."""

    @abstractmethod
    def mark_manifested(self, *, segment_ids: list[str], event_ids: list[str]) -> None:
        """Record that these outcomes and events are in their manifest."""

    @abstractmethod
    def done_segments(self, segment_ids: Collection[str]) -> list[SegmentRecord]:
        """The done segments among ``segment_ids``, in arrival order."""

    @abstractmethod
    def requeue(self, segment_ids: Collection[str]) -> int:
        """Put done segments back to pending with a fresh count of attempts.

        For a segment whose object is no longer in the archive. Returns how many were re-queued.
        """

    @abstractmethod
    def mark_unmanifested(
        self, *, segment_ids: Collection[str], event_ids: Collection[str]
    ) -> None:
        """Have the next manifest merge take these outcomes and events again.

        For a manifest that lost them (deleted, or edited by hand); merges are
        idempotent, so an entry the manifest still holds is left as it is.
        """

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Segments per state, plus unprocessed events (for health and metrics)."""

    def close(self) -> None:
        """Release the journal's resources."""
