"""What the journal calls archived, checked against the archive before a run trusts it.

The journal remembers every segment a run archived, so the same webhooks run
again fetch nothing. But the archive can lose things the journal never hears
of: an object deleted by hand, by a bucket rule or a partial restore; a
manifest deleted (what a user does with one the tool reported unreadable) or
edited. Trusting the journal alone, a run again would report such a segment
as already archived while the archive lacks it, and ``reconcile`` would queue
a file the listing names and then skip it.

So before a run works, the done segments its input names are looked up, with
one listing of each of their sessions: one whose object is gone is queued again (fetched, verified and stored as new),
and one its session's manifest does not list is merged into it again. A
session whose manifest is gone gets every outcome and event the journal holds
for it merged again. Merges are idempotent, so nothing a manifest holds changes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from storage_backends import Backend, StorageError

from ..errors import TrackArchiveError
from ..journal import Journal, SegmentRecord, SegmentState
from ..layout import session_prefix
from ..manifest import read_manifest

log = logging.getLogger(__name__)


@dataclass
class Recheck:
    """What :func:`recheck_done` found: segment ids queued again and ids merged again."""

    requeued: list[str] = field(default_factory=list)
    remerged: list[str] = field(default_factory=list)


def _stored_key(record: SegmentRecord) -> str:
    stored = record.stored
    return stored.key if stored is not None else record.key


def _held_keys(backend: Backend, session_id: str) -> set[str] | None:
    """The keys the archive holds under the session, from one listing (``None``: unknown).

    One listing per session rather than a lookup per segment: a run again over a
    day's webhooks on a bucket would otherwise wait for thousands of requests in turn.
    """
    prefix = session_prefix(session_id)
    try:
        return {stat.key for stat in backend.list(prefix)}
    except StorageError as exc:
        log.warning("cannot check what the archive holds of session %s (%s)", session_id, exc)
        return None


def recheck_done(backend: Backend, journal: Journal, segment_ids: Collection[str]) -> Recheck:
    """Queue again the done segments whose object is gone; re-merge those their manifest lacks."""
    found = Recheck()
    present: dict[str, list[SegmentRecord]] = {}
    by_session: dict[str, list[SegmentRecord]] = {}
    for record in journal.done_segments(segment_ids):
        by_session.setdefault(record.session_id, []).append(record)
    for session_id, records in by_session.items():
        held = _held_keys(backend, session_id)
        if held is None:
            continue  # not knowing is no reason to fetch again: the journal's word stands
        for record in records:
            key = _stored_key(record)
            if key in held:
                present.setdefault(session_id, []).append(record)
            else:
                log.warning("%s is no longer in the archive; fetching it again", key)
                found.requeued.append(record.segment_id)
    events: list[str] = []
    for session_id, records in present.items():
        try:
            manifest, _ = read_manifest(backend, session_id)
        except (StorageError, TrackArchiveError):
            # Merged again so that the manifest flush reports the session's manifest.
            found.remerged += [r.segment_id for r in records]
            continue
        if manifest is None:
            log.warning("session %s has no manifest; writing it again from the journal", session_id)
            settled = (SegmentState.DONE, SegmentState.FAILED)
            found.remerged += [
                r.segment_id for r in journal.segments(session_id=session_id, states=settled)
            ]
            events += [e.event_id for e in journal.events(session_id=session_id)]
            continue
        listed = {segment.key for _, _, segment in manifest.segments()}
        missing = [r for r in records if _stored_key(r) not in listed]
        if missing:
            log.warning(
                "manifest of session %s lacks %d archived segment(s); merging them again",
                session_id,
                len(missing),
            )
        found.remerged += [r.segment_id for r in missing]
    if found.requeued:
        journal.requeue(found.requeued)
    if found.remerged or events:
        journal.mark_unmanifested(segment_ids=found.remerged, event_ids=events)
    return found
