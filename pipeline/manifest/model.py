"""The per-session manifest: what each participant recorded, by kind, in order.

The JSON is camelCase, like the recording service's own payloads. A manifest
is only ever changed by merging (see :func:`merge`), so two writers that
raced can both re-apply their changes on top of each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..segment import SegmentStart

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    """Now, in UTC, to the millisecond (what manifests record)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class _Model(BaseModel):
    # Validators are built when a manifest is first read or written, not at import: the
    # commands that import this module without touching a manifest start without that cost.
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


class Stream(_Model):
    """One elementary stream found in a segment."""

    type: str
    codec: str


class Segment(_Model):
    """One archived file."""

    key: str
    filename: str
    sourceUrl: str
    sourcePath: str | None = None
    size: int
    sha256: str
    crc32c: str
    md5: str | None = None
    durationSeconds: float | None = None
    container: str | None = None
    streams: list[Stream] = Field(default_factory=list)
    startedAt: datetime | None = None
    #: Epoch milliseconds from the service's file name; the primary sort key.
    startedAtMs: int | None = None
    archivedAt: datetime
    #: Order of arrival, the last resort for ordering segments.
    arrival: int = 0
    #: Set when different content already held the natural key.
    conflictWith: str | None = None
    #: Other sources whose bytes were this same object (identical content for the same key).
    otherSourceUrls: list[str] | None = None

    def source_urls(self) -> list[str]:
        """Every source this object's bytes came from, ``sourceUrl`` first."""
        return [self.sourceUrl, *(self.otherSourceUrls or ())]

    def start(self) -> SegmentStart:
        """The start this entry records, and how it was known."""
        return SegmentStart.recorded(epoch_ms=self.startedAtMs, at=self.startedAt)


class KindSummary(_Model):
    """Totals for one participant's kind."""

    segmentCount: int = 0
    totalBytes: int = 0
    totalDurationSeconds: float = 0.0


class Failure(_Model):
    """A segment that could not be archived, or a ``-failed`` webhook."""

    participantId: str
    kind: str
    sourceUrl: str | None = None
    reason: str
    at: datetime
    quarantine: str | None = None


class LifecycleEntry(_Model):
    """The lifecycle stages seen for one participant's kind."""

    state: str
    seen: list[str] = Field(default_factory=list)
    updatedAt: datetime


class ExportSource(_Model):
    """One archived segment an export was made from."""

    key: str
    sha256: str


class ExportEntry(_Model):
    """One file ``track-archive export`` wrote into the archive."""

    key: str
    #: None for the session's audio mix.
    participantId: str | None = None
    #: ``camera``, ``screen`` or ``mix``.
    pair: str
    mode: str
    format: str
    size: int
    sha256: str
    crc32c: str
    #: Where the file's media starts and ends on the session timeline, in seconds.
    startSeconds: float = 0.0
    durationSeconds: float = 0.0
    #: SHA-256 over everything the file was made from; equal inputs, equal file.
    inputs: str
    sources: list[ExportSource] = Field(default_factory=list)
    createdAt: datetime


class Manifest(_Model):
    """One session's manifest document."""

    schemaVersion: int = SCHEMA_VERSION
    sessionId: str
    meetingId: str | None = None
    updatedAt: datetime
    participants: dict[str, dict[str, list[Segment]]] = Field(default_factory=dict)
    summary: dict[str, dict[str, KindSummary]] = Field(default_factory=dict)
    failures: list[Failure] = Field(default_factory=list)
    lifecycle: dict[str, dict[str, LifecycleEntry]] = Field(default_factory=dict)
    totals: KindSummary = Field(default_factory=KindSummary)
    #: Files made from the segments (``track-archive export``); absent in older manifests.
    exports: list[ExportEntry] = Field(default_factory=list)

    def to_json(self) -> bytes:
        """The stored form: indented, stable, UTF-8."""
        return (self.model_dump_json(indent=2, exclude_none=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse a stored manifest."""
        return cls.model_validate_json(data)

    def segments(self) -> list[tuple[str, str, Segment]]:
        """Every segment as ``(participantId, kind, segment)``, in manifest order."""
        return [
            (pid, kind, seg)
            for pid, kinds in self.participants.items()
            for kind, segs in kinds.items()
            for seg in segs
        ]


def segment_order(segment: Segment) -> tuple[Any, ...]:
    """Recording start from the file name, else from the media, else arrival."""
    return segment.start().order_key(segment.arrival, segment.filename)
