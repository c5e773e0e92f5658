"""What a run did: each segment's outcome in this process, and the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..download import DownloadResult
from ..journal import Journal, SegmentRecord, SegmentState
from ..segment import StoredSegment


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one segment in this process."""

    record: SegmentRecord
    state: str  # "archived", "skipped", "failed" or "retrying"
    size: int = 0
    reason: str | None = None
    download: DownloadResult | None = None
    #: The stored segment's record when ``state`` is "archived" or "skipped".
    stored: StoredSegment | None = None


@dataclass
class RunSummary:
    """Counts for one batch run; the ``--json`` output of ``archive``."""

    archived: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    input_errors: list[str] = field(default_factory=list)
    ignored_events: list[str] = field(default_factory=list)
    #: Session ID -> why its manifest could not be written.
    manifest_failures: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The documented JSON document (extra keys after the contract's five)."""
        return {
            "archived": self.archived,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes": self.bytes,
            "failures": self.failures,
            "conflicts": self.conflicts,
            "inputErrors": self.input_errors,
            "ignoredEvents": self.ignored_events,
            "manifestFailures": [
                {"sessionId": session, "reason": reason}
                for session, reason in self.manifest_failures.items()
            ],
        }



def summarise(journal: Journal, segment_ids: set[str], outcomes: list[Outcome]) -> RunSummary:
    """The run's counts over the segments its input named (and any it resumed)."""
    summary = RunSummary()
    worked = {o.record.segment_id: o for o in outcomes}
    for record in journal.segments():
        if record.segment_id not in segment_ids and record.segment_id not in worked:
            continue
        outcome = worked.get(record.segment_id)
        if record.state is SegmentState.DONE:
            if outcome is not None and outcome.state == "archived":
                summary.archived += 1
                summary.bytes += outcome.size
            else:
                summary.skipped += 1
            stored = record.stored
            if stored is not None and stored.conflict_with:
                summary.conflicts.append({"key": stored.conflict_with, "storedAt": stored.key})
        elif record.state is SegmentState.FAILED:
            summary.failed += 1
            summary.failures.append(
                {
                    "sessionId": record.session_id,
                    "participantId": record.participant_id,
                    "kind": record.kind,
                    "sourceUrl": record.source_url,
                    "reason": record.error,
                }
            )
    return summary
