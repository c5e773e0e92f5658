"""What travels on the queues, and the one place it is serialized.

A segment task carries a ``SegmentJob`` (the journal's ``NewSegment`` plus its
arrival order); a manifest message carries a ``ManifestUpdate`` for one
session. Both are JSON. A worker trusts nothing in a message: the key must be
the one the IDs and file name give, so a forged message cannot write anywhere
else in the archive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..archive import segment_id as make_segment_id
from ..errors import UnsafeIdentifier
from ..journal import NewSegment, SegmentRecord, SegmentState
from ..layout import segment_key
from ..manifest import Failure, ManifestUpdate, Segment
from .errors import MalformedMessage

MESSAGE_VERSION: Literal[1] = 1


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"field {'.'.join(str(p) for p in err['loc']) or '(message)'}: {err['msg']}"
        for err in exc.errors()
    )


class SegmentJob(BaseModel):
    """One segment to archive: everything a worker needs, nothing it must look up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = MESSAGE_VERSION
    segment_id: str = Field(min_length=1, max_length=64)
    session_id: str = Field(min_length=1, max_length=512)
    meeting_id: str | None = Field(None, max_length=512)
    participant_id: str = Field(min_length=1, max_length=512)
    kind: Literal["audio", "video", "screen_audio", "screen_video"]
    source_url: str = Field(min_length=1, max_length=4096)
    source_path: str | None = Field(None, max_length=4096)
    filename: str = Field(min_length=1, max_length=1024)
    key: str = Field(min_length=1, max_length=4096)
    arrival: int = Field(0, ge=0)

    @classmethod
    def from_segment(cls, segment: NewSegment, *, arrival: int) -> SegmentJob:
        """The job for a planned segment."""
        return cls(
            segment_id=segment.segment_id,
            session_id=segment.session_id,
            meeting_id=segment.meeting_id,
            participant_id=segment.participant_id,
            kind=segment.kind,
            source_url=segment.source_url,
            source_path=segment.source_path,
            filename=segment.filename,
            key=segment.key,
            arrival=arrival,
        )

    @classmethod
    def from_message(cls, data: Any) -> SegmentJob:
        """Validate a received message; ``MalformedMessage`` names what is wrong."""
        if not isinstance(data, dict):
            raise MalformedMessage(f"expected a JSON object, found {type(data).__name__}")
        try:
            job = cls.model_validate(data)
        except ValidationError as exc:
            raise MalformedMessage(_describe(exc)) from None
        try:
            expected = segment_key(job.session_id, job.participant_id, job.kind, job.filename)
        except UnsafeIdentifier as exc:
            raise MalformedMessage(str(exc)) from None
        if job.key != expected:
            raise MalformedMessage(
                f"field key: {job.key!r} is not the key of its IDs ({expected!r})"
            )
        if job.segment_id != make_segment_id(job.key, job.source_url):
            raise MalformedMessage("field segment_id: does not match its key and source_url")
        return job

    def to_message(self) -> dict[str, Any]:
        """The JSON body of the task."""
        return self.model_dump(mode="json")

    def record(self, *, state: SegmentState, updated_at: datetime) -> SegmentRecord:
        """The job as a journal row, for the code that builds manifest entries."""
        return SegmentRecord(
            segment_id=self.segment_id,
            session_id=self.session_id,
            meeting_id=self.meeting_id,
            participant_id=self.participant_id,
            kind=self.kind,
            source_url=self.source_url,
            source_path=self.source_path,
            filename=self.filename,
            key=self.key,
            arrival=self.arrival,
            state=state,
            attempts=0,
            result=None,
            error=None,
            manifested=False,
            updated_at=updated_at,
        )


class _UpdateMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = MESSAGE_VERSION
    session_id: str = Field(min_length=1, max_length=512)
    meeting_id: str | None = None
    segments: list[tuple[str, str, Segment]] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    lifecycle: list[tuple[str, str, str, datetime]] = Field(default_factory=list)


def update_to_message(update: ManifestUpdate) -> dict[str, Any]:
    """The JSON body of a manifest message."""
    return _UpdateMessage(
        session_id=update.session_id,
        meeting_id=update.meeting_id,
        segments=update.segments,
        failures=update.failures,
        lifecycle=update.lifecycle,
    ).model_dump(mode="json")


def update_from_message(data: Any) -> ManifestUpdate:
    """A received manifest message; ``MalformedMessage`` names what is wrong."""
    try:
        message = _UpdateMessage.model_validate(data)
    except ValidationError as exc:
        raise MalformedMessage(_describe(exc)) from None
    return ManifestUpdate(
        session_id=message.session_id,
        meeting_id=message.meeting_id,
        segments=list(message.segments),
        failures=list(message.failures),
        lifecycle=list(message.lifecycle),
    )


def combine(updates: list[ManifestUpdate]) -> ManifestUpdate:
    """Several updates of one session as one (the merge is idempotent and order-free)."""
    first = updates[0]
    combined = ManifestUpdate(session_id=first.session_id)
    for update in updates:
        combined.meeting_id = combined.meeting_id or update.meeting_id
        combined.segments.extend(update.segments)
        combined.failures.extend(update.failures)
        combined.lifecycle.extend(update.lifecycle)
    return combined
