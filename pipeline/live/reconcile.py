"""Recovering recordings whose webhook never came, through the listing API.

The listing API needs the room: given only a session, its room is taken
from the session's manifest (``meetingId``) or the journal. Every listed file
the archive lacks is turned into the equivalent of its
``-stopped`` webhook (journaled with the source ``reconcile:<recording id>``)
and archived by the same ``Archiver`` as any delivery, so a file archived
before is never fetched twice and a second run changes nothing. A download
whose size differs from the listed ``size`` is refused before it is stored;
afterwards each listed size is compared with what was archived before, and the
listed duration only where its unit turns out to be clear (the listing does
not say whether it counts seconds or milliseconds).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from storage_backends import StorageError

from ..archive import Archiver, RunSummary, plan_segments, recheck_done, summarise
from ..errors import InputError, TrackArchiveError
from ..events import TYPE_PREFIX, TrackEvent, parse_event
from ..journal import SegmentState
from ..manifest import read_manifest
from .errors import ApiArgumentError
from .recording_api import ListedFile, ListedRecording, RecordingApi

log = logging.getLogger(__name__)

#: Seconds of difference tolerated between a listed and a measured duration.
DURATION_TOLERANCE = 1.0


@dataclass
class ReconcileSummary:
    """What reconcile found and did; ``--json`` prints :meth:`as_json`."""

    listed: int = 0
    present: int = 0
    queued: int = 0
    run: RunSummary = field(default_factory=RunSummary)
    size_mismatches: list[dict[str, Any]] = field(default_factory=list)
    duration_notes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No failure, no bad listing entry and every listed size matched."""
        return not (self.run.failed or self.run.input_errors or self.size_mismatches)

    def as_json(self) -> dict[str, Any]:
        """The archive summary's keys plus what reconcile adds."""
        data = self.run.as_json()
        data.update(
            listed=self.listed,
            present=self.present,
            queued=self.queued,
            sizeMismatches=self.size_mismatches,
            durationNotes=self.duration_notes,
        )
        return data


def stopped_payload(recording: ListedRecording, files: list[ListedFile]) -> dict[str, Any]:
    """The ``-stopped`` webhook the service would have sent for ``files``."""
    details = [{"filePath": f.file_path, "fileUrl": f.file_url} for f in files]
    for detail in details:
        if detail["filePath"] is None:
            del detail["filePath"]
    return {
        "webhookType": f"{TYPE_PREFIX}stopped",
        "data": {
            "meetingId": recording.room_id,
            "sessionId": recording.session_id,
            "participantId": recording.participant_id,
            "kind": recording.kind,
            "fileDetails": details,
        },
    }


def _duration_note(listed: float, measured: float) -> dict[str, Any] | None:
    """``None`` when the listed duration agrees in seconds or milliseconds."""
    if abs(listed - measured) <= DURATION_TOLERANCE:
        return None
    if abs(listed / 1000.0 - measured) <= DURATION_TOLERANCE:
        return None
    return {"listed": listed, "measuredSeconds": round(measured, 3)}


class Reconciler:
    """Compares one room's or session's listing with the archive and fills the gaps."""

    def __init__(self, api: RecordingApi, archiver: Archiver, *, concurrency: int = 4) -> None:
        self.api = api
        self.archiver = archiver
        self.concurrency = concurrency

    async def run(
        self, *, room_id: str | None = None, session_id: str | None = None
    ) -> ReconcileSummary:
        """List, queue what is missing, archive it, then check sizes.

        The listing needs the room: given only a session, its room is found in
        the session's manifest or journaled deliveries (``ApiArgumentError`` if neither knows).
        """
        room = room_id or await asyncio.to_thread(self._room_of, session_id)
        listing = await asyncio.to_thread(
            lambda: list(self.api.recordings(room_id=room, session_id=session_id))
        )
        summary = ReconcileSummary()
        expected: dict[str, tuple[ListedRecording, ListedFile]] = {}
        touched: set[str] = set()
        for recording in listing:
            summary.listed += len(recording.files)
            missing = await asyncio.to_thread(self._missing, recording, expected, summary)
            if not missing:
                continue
            payload = stopped_payload(recording, missing)
            try:
                _, segment_ids = await asyncio.to_thread(
                    self.archiver.ingest, payload, source=f"reconcile:{recording.id}"
                )
            except InputError as exc:
                summary.run.input_errors.append(str(exc))
                log.error("%s", exc)
                continue
            # A file archived before and gone from the archive since is fetched again.
            await asyncio.to_thread(
                recheck_done, self.archiver.backend, self.archiver.journal, segment_ids
            )
            touched.update(segment_ids)
            summary.queued += len(segment_ids)
        outcomes = await self.archiver.run(concurrency=self.concurrency)
        run = summarise(self.archiver.journal, touched, outcomes)
        run.input_errors = summary.run.input_errors
        summary.run = run
        await asyncio.to_thread(self._check, expected, summary)
        return summary

    def _room_of(self, session_id: str | None) -> str:
        """The room (``meetingId``) of a session, from its manifest, else from the journal."""
        if not session_id:
            raise ApiArgumentError("give a room or a session to reconcile")
        try:
            manifest, _ = read_manifest(self.archiver.backend, session_id)
        except (TrackArchiveError, StorageError, ValueError) as exc:
            log.warning(
                "session %s: manifest unreadable (%s); looking in the journal", session_id, exc
            )
            manifest = None
        if manifest is not None and manifest.meetingId:
            return manifest.meetingId
        journal = self.archiver.journal
        for record in journal.segments(session_id=session_id):
            if record.meeting_id:
                return record.meeting_id
        for event in journal.events(session_id=session_id):
            data = event.payload.get("data")
            if (
                isinstance(data, dict)
                and isinstance(data.get("meetingId"), str)
                and data["meetingId"]
            ):
                return str(data["meetingId"])
        raise ApiArgumentError(
            f"the listing API needs the room of session {session_id!r}, and neither its "
            "manifest nor the journal names it: give --room with --session"
        )

    def _missing(
        self,
        recording: ListedRecording,
        expected: dict[str, tuple[ListedRecording, ListedFile]],
        summary: ReconcileSummary,
    ) -> list[ListedFile]:
        """The files of ``recording`` not yet in the archive with their listed size."""
        missing: list[ListedFile] = []
        for listed in recording.files:
            try:
                event = parse_event(stopped_payload(recording, [listed]), source="listing")
                assert isinstance(event, TrackEvent)
                (job,) = plan_segments(event, source=f"reconcile:{recording.id}")
            except InputError as exc:
                summary.run.input_errors.append(str(exc))
                log.error("listed file cannot be archived: %s", exc)
                continue
            expected[job.segment_id] = (recording, listed)
            if listed.size is not None:
                # A file shorter (or longer) than listed is refused before it is stored.
                self.archiver.expect_size(job.segment_id, listed.size)
            stat = self.archiver.backend.stat(job.key)
            if stat is not None and (listed.size is None or stat.size == listed.size):
                summary.present += 1
                continue
            missing.append(listed)
        return missing

    def _check(
        self,
        expected: dict[str, tuple[ListedRecording, ListedFile]],
        summary: ReconcileSummary,
    ) -> None:
        """Compare listed sizes and durations with the journal's record of each file."""
        done = {
            record.segment_id: record
            for record in self.archiver.journal.segments(states=(SegmentState.DONE,))
            if record.segment_id in expected
        }
        for segment_id, (recording, listed) in expected.items():
            record = done.get(segment_id)
            stored = record.stored if record is not None else None
            if stored is None:
                continue
            where = {
                "sessionId": recording.session_id,
                "participantId": recording.participant_id,
                "kind": recording.kind,
                "fileUrl": listed.file_url,
                "key": stored.key,
            }
            if listed.size is not None and stored.size != listed.size:
                summary.size_mismatches.append(
                    {**where, "listedSize": listed.size, "archivedSize": stored.size}
                )
                log.error(
                    "%s: listed at %d bytes, archived %d", where["key"], listed.size, stored.size
                )
            measured = stored.duration_seconds
            if listed.duration is not None and measured is not None:
                note = _duration_note(listed.duration, float(measured))
                if note is not None:
                    summary.duration_notes.append({**where, **note})
