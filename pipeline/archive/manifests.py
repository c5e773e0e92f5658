"""Merging journal outcomes and lifecycle events into each session's manifest."""

from __future__ import annotations

import logging

from storage_backends import Backend

from ..events import TYPE_PREFIX
from ..journal import Journal, SegmentState
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
    for record in journal.segments(
        session_id=session_id, states=(SegmentState.DONE, SegmentState.FAILED)
    ):
        if record.manifested:
            continue
        segment_ids.append(record.segment_id)
        update.meeting_id = update.meeting_id or record.meeting_id
        stored = record.stored
        if stored is not None:
            update.segments.append(
                (record.participant_id, record.kind, manifest_segment(record, stored))
            )
        elif record.state is SegmentState.FAILED:
            update.failures.append(
                Failure(
                    participantId=record.participant_id,
                    kind=record.kind,
                    sourceUrl=record.source_url,
                    reason=record.error or "unknown failure",
                    at=record.updated_at,
                    quarantine=(record.result or {}).get("quarantine"),
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


def flush_manifests(backend: Backend, journal: Journal) -> dict[str, Manifest]:
    """Bring every session's manifest up to date with the journal."""
    written: dict[str, Manifest] = {}
    for session_id in journal.unmanifested_sessions():
        update, segment_ids, event_ids = session_update(journal, session_id)
        if update:
            written[session_id] = update_manifest(backend, update)
            log.info("manifest of session %s updated", session_id)
        journal.mark_manifested(segment_ids=segment_ids, event_ids=event_ids)
    return written
