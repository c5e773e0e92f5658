"""Merging journal outcomes and lifecycle events into each session's manifest.

Sessions are independent: a session whose manifest cannot be written (an
unreadable manifest left by hand, a refused write) is that session's failure,
reported once, and every other session's manifest is still written. The
failed session is tried again after a pause that doubles up to an hour, so a
long-running receiver neither floods its log nor gives up on a fault that an
operator fixes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from storage_backends import Backend, StorageError

from ..errors import TrackArchiveError, UnsafeIdentifier
from ..events import TYPE_PREFIX
from ..journal import Journal
from ..manifest import Failure, Manifest, ManifestUpdate, update_manifest
from .segments import manifest_segment

log = logging.getLogger(__name__)


def session_update(
    journal: Journal, session_id: str
) -> tuple[ManifestUpdate, list[str], list[str]]:
    """Everything about ``session_id`` not yet in its manifest, and the ids it covers."""
    update = ManifestUpdate(session_id=session_id)
    segment_ids: list[str] = []
    event_ids: list[str] = []
    for record in journal.unmanifested_segments(session_id):
        segment_ids.append(record.segment_id)
        update.meeting_id = update.meeting_id or record.meeting_id
        stored = record.stored
        if stored is not None:
            update.segments.append(
                (record.participant_id, record.kind, manifest_segment(record, stored))
            )
        elif (refusal := record.refusal) is not None:
            update.failures.append(
                Failure(
                    participantId=record.participant_id,
                    kind=record.kind,
                    sourceUrl=record.source_url,
                    reason=record.error or "unknown failure",
                    at=record.updated_at,
                    quarantine=refusal.quarantine,
                )
            )
    for event in journal.unmanifested_events(session_id):
        if not event.webhook_type.startswith(TYPE_PREFIX):
            continue
        event_ids.append(event.event_id)
        stage = event.webhook_type.removeprefix(TYPE_PREFIX)
        data = event.payload.get("data", {})
        update.meeting_id = update.meeting_id or data.get("meetingId")
        if event.participant_id is None or event.kind is None:
            continue
        update.lifecycle.append((event.participant_id, event.kind, stage, event.received_at))
        if stage == "failed":
            update.failures.append(
                Failure(
                    participantId=event.participant_id,
                    kind=event.kind,
                    reason="the recording service reported participant-track-recording-failed",
                    at=event.received_at,
                )
            )
    return update, segment_ids, event_ids


#: First pause before a failed session's manifest is tried again, and the longest.
RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 3600.0


@dataclass
class FlushReport:
    """What one pass over the unmanifested sessions did."""

    written: dict[str, Manifest] = field(default_factory=dict)
    #: Session ID -> why its manifest could not be written (this pass or a recent one).
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class _Failing:
    reason: str
    retry_at: float
    pause: float


class ManifestFlusher:
    """Brings manifests up to date, one session at a time, remembering failed sessions."""

    def __init__(self, backend: Backend, journal: Journal) -> None:
        self.backend = backend
        self.journal = journal
        self._failing: dict[str, _Failing] = {}

    def flush(self, *, retry_now: bool = False) -> FlushReport:
        """Write every session's pending entries; ``retry_now`` ignores the pauses."""
        report = FlushReport()
        now = time.monotonic()
        for session_id in self.journal.unmanifested_sessions():
            failing = self._failing.get(session_id)
            if failing is not None and not retry_now and now < failing.retry_at:
                report.failed[session_id] = failing.reason
                continue
            try:
                manifest = self._flush_session(session_id)
            except UnsafeIdentifier as exc:
                report.failed[session_id] = str(exc)
                log.error("session %r can have no manifest: %s", session_id, exc)
                continue
            except (StorageError, TrackArchiveError) as exc:
                report.failed[session_id] = self._failed(session_id, exc, now)
                continue
            if failing is not None:
                del self._failing[session_id]
                log.info(
                    "manifest of session %s written again after: %s", session_id, failing.reason
                )
            if manifest is not None:
                report.written[session_id] = manifest
        return report

    def _flush_session(self, session_id: str) -> Manifest | None:
        update, segment_ids, event_ids = session_update(self.journal, session_id)
        manifest = None
        if update:
            try:
                manifest = update_manifest(self.backend, update)
            except UnsafeIdentifier:
                # No manifest can ever exist for this ID (the segments were
                # refused at intake); its lifecycle events go nowhere, so they
                # are settled rather than retried forever.
                self.journal.mark_manifested(segment_ids=segment_ids, event_ids=event_ids)
                raise
            log.info("manifest of session %s updated", session_id)
        self.journal.mark_manifested(segment_ids=segment_ids, event_ids=event_ids)
        return manifest

    def _failed(self, session_id: str, exc: Exception, now: float) -> str:
        reason = str(exc)
        before = self._failing.get(session_id)
        pause = RETRY_AFTER if before is None else min(2 * before.pause, MAX_RETRY_AFTER)
        self._failing[session_id] = _Failing(reason, now + pause, pause)
        if before is None or before.reason != reason:
            # One line per new reason, no traceback: the reason names the key at fault.
            log.error(
                "manifest of session %s not written (other sessions go on; retried in %.0f s): %s",
                session_id,
                pause,
                reason,
            )
        return reason


def flush_manifests(backend: Backend, journal: Journal) -> FlushReport:
    """One pass bringing every session's manifest up to date with the journal."""
    return ManifestFlusher(backend, journal).flush(retry_now=True)
