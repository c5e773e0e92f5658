"""Changes to a manifest, applied as an idempotent merge.

Applying the same update twice, or two updates in either order, gives the same
document; that is what lets compare-and-swap retries and concurrent runs
combine their work without losing entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..stages import stage_rank
from .model import (
    ExportEntry,
    Failure,
    KindSummary,
    LifecycleEntry,
    Manifest,
    Segment,
    segment_order,
    utcnow,
)


@dataclass
class ManifestUpdate:
    """What one run learned about one session."""

    session_id: str
    meeting_id: str | None = None
    segments: list[tuple[str, str, Segment]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lifecycle: list[tuple[str, str, str, datetime]] = field(default_factory=list)
    exports: list[ExportEntry] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.segments or self.failures or self.lifecycle or self.meeting_id or self.exports
        )


def _add_segment(manifest: Manifest, pid: str, kind: str, segment: Segment) -> None:
    segments = manifest.participants.setdefault(pid, {}).setdefault(kind, [])
    for index, existing in enumerate(segments):
        if existing.key == segment.key:
            # Same object: keep the first archival time, take the fresher facts, and
            # remember every source it came from (a batch waits for each one by its URL).
            others = sorted(
                set(existing.source_urls() + segment.source_urls()) - {segment.sourceUrl}
            )
            segments[index] = segment.model_copy(
                update={"archivedAt": existing.archivedAt, "otherSourceUrls": others or None}
            )
            break
    else:
        segments.append(segment)
    segments.sort(key=segment_order)


def _add_failure(manifest: Manifest, failure: Failure) -> None:
    for existing in manifest.failures:
        if (existing.participantId, existing.kind, existing.sourceUrl, existing.reason) == (
            failure.participantId,
            failure.kind,
            failure.sourceUrl,
            failure.reason,
        ):
            # The same failure again: keep one entry, dated by its latest occurrence.
            existing.at = max(existing.at, failure.at)
            return
    manifest.failures.append(failure)


def _add_stage(manifest: Manifest, pid: str, kind: str, stage: str, at: datetime) -> None:
    kinds = manifest.lifecycle.setdefault(pid, {})
    entry = kinds.get(kind)
    if entry is None:
        kinds[kind] = LifecycleEntry(state=stage, seen=[stage], updatedAt=at)
        return
    if stage not in entry.seen:
        entry.seen.append(stage)
        entry.seen.sort(key=stage_rank)
    # A later stage wins when two arrive out of order (the receiver's order, see Lifecycle.rank).
    if stage_rank(stage) >= stage_rank(entry.state):
        entry.state = stage
    entry.updatedAt = max(entry.updatedAt, at)


def _add_export(manifest: Manifest, entry: ExportEntry) -> None:
    # One entry per key. Of two made for the same key, the later one wins (then the
    # larger inputs digest), so merging in either order gives the same document.
    for index, existing in enumerate(manifest.exports):
        if existing.key == entry.key:
            if (entry.createdAt, entry.inputs) > (existing.createdAt, existing.inputs):
                manifest.exports[index] = entry
            return
    manifest.exports.append(entry)
    manifest.exports.sort(key=lambda e: e.key)


def _summarise(manifest: Manifest) -> None:
    totals = KindSummary()
    manifest.summary = {}
    for pid, kinds in manifest.participants.items():
        for kind, segments in kinds.items():
            summary = KindSummary(
                segmentCount=len(segments),
                totalBytes=sum(s.size for s in segments),
                totalDurationSeconds=round(sum(s.durationSeconds or 0.0 for s in segments), 3),
            )
            manifest.summary.setdefault(pid, {})[kind] = summary
            totals.segmentCount += summary.segmentCount
            totals.totalBytes += summary.totalBytes
            totals.totalDurationSeconds += summary.totalDurationSeconds
    totals.totalDurationSeconds = round(totals.totalDurationSeconds, 3)
    manifest.totals = totals


def merge(current: Manifest | None, update: ManifestUpdate) -> Manifest:
    """Return ``current`` with ``update`` applied (``current`` is not modified)."""
    manifest = (
        current.model_copy(deep=True)
        if current is not None
        else Manifest(sessionId=update.session_id, updatedAt=utcnow())
    )
    if update.meeting_id and not manifest.meetingId:
        manifest.meetingId = update.meeting_id
    for pid, kind, segment in update.segments:
        _add_segment(manifest, pid, kind, segment)
    archived_urls = {url for _, _, seg in manifest.segments() for url in seg.source_urls()}
    for failure in update.failures:
        _add_failure(manifest, failure)
    # A file that failed once and was archived later is no longer a failure.
    manifest.failures = [
        f for f in manifest.failures if f.sourceUrl is None or f.sourceUrl not in archived_urls
    ]
    for pid, kind, stage, at in update.lifecycle:
        _add_stage(manifest, pid, kind, stage, at)
    for entry in update.exports:
        _add_export(manifest, entry)
    _summarise(manifest)
    manifest.updatedAt = utcnow()
    return manifest
