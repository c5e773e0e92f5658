"""``GET /sessions/{id}``: what the receiver knows about one session."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from storage_backends import Backend

from ..errors import UnsafeIdentifier
from ..journal import Journal
from ..manifest import read_manifest
from .lifecycle import fold


def _manifest_summary(backend: Backend, session_id: str) -> dict[str, Any] | None:
    try:
        manifest, _ = read_manifest(backend, session_id)
    except UnsafeIdentifier:
        return None
    if manifest is None:
        return None
    return {
        "updatedAt": manifest.updatedAt.isoformat(),
        "meetingId": manifest.meetingId,
        "totals": manifest.totals.model_dump(),
        "summary": {
            pid: {kind: s.model_dump() for kind, s in kinds.items()}
            for pid, kinds in manifest.summary.items()
        },
        "failures": len(manifest.failures),
    }


def session_report(
    journal: Journal, backend: Backend, session_id: str, now: datetime, stuck_after: timedelta
) -> dict[str, Any] | None:
    """The session's lifecycle per participant and kind, segment states and manifest summary.

    ``None`` when neither the journal nor the archive knows the session.
    """
    events = journal.events(session_id=session_id)
    segments = journal.segments(session_id=session_id)
    manifest = _manifest_summary(backend, session_id)
    if not events and not segments and manifest is None:
        return None
    participants: dict[str, dict[str, dict[str, Any]]] = {}
    for (_, pid, kind), track in fold(events).items():
        participants.setdefault(pid, {})[kind] = track.as_json(now, stuck_after)
    for seg in segments:
        entry = participants.setdefault(seg.participant_id, {}).setdefault(seg.kind, {})
        counts = entry.setdefault("segments", {})
        counts[seg.state.value] = counts.get(seg.state.value, 0) + 1
    stuck = sorted(
        f"{pid}/{kind}"
        for pid, kinds in participants.items()
        for kind, entry in kinds.items()
        if entry.get("stuck")
    )
    return {
        "sessionId": session_id,
        "participants": participants,
        "stuck": stuck,
        "manifest": manifest,
    }
