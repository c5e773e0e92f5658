"""Typed models of the recording service's webhooks.

Every ``participant-track-recording-*`` webhook carries ``meetingId``,
``sessionId``, ``participantId`` and ``kind``; only ``-stopped`` adds
``fileDetails``. The service sends no event id, so a delivery is identified by
a hash of its canonical content: duplicates of one delivery hash the same.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InputError, UnsafeIdentifier
from .jsontext import dotted_path, lone_surrogate
from .layout import encode_component, segment_key

# The stages and their order live apart so that manifest readers need no webhook model.
from .stages import TYPE_PREFIX as TYPE_PREFIX
from .stages import Lifecycle as Lifecycle
from .stages import stage_rank as stage_rank

Kind = Literal["audio", "video", "screen_audio", "screen_video"]
KINDS: tuple[str, ...] = ("audio", "video", "screen_audio", "screen_video")


class FileDetail(BaseModel):
    """One recorded file of a stopped track."""

    # Built when the first webhook is read, not at import: a run given no webhook (or one that
    # only resumes its journal) never validates one.
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    fileUrl: str = Field(min_length=1, max_length=4096)
    filePath: str | None = Field(None, max_length=4096)

    @field_validator("fileUrl")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        return value

    @property
    def filename(self) -> str:
        """The last segment of ``filePath``, else of the URL's path."""
        for candidate in (self.filePath or "", urlsplit(self.fileUrl).path):
            name = candidate.rstrip("/").rsplit("/", 1)[-1]
            if name:
                return name
        raise ValueError("neither filePath nor fileUrl ends in a file name")


class TrackData(BaseModel):
    """The ``data`` object of a participant track recording webhook."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    meetingId: str | None = Field(None, max_length=512)
    sessionId: str = Field(min_length=1, max_length=512)
    participantId: str = Field(min_length=1, max_length=512)
    kind: Kind
    fileDetails: list[FileDetail] = Field(default_factory=list)


class TrackEvent(BaseModel):
    """A validated ``participant-track-recording-*`` webhook."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    webhookType: str
    data: TrackData

    @property
    def stage(self) -> Lifecycle:
        """The lifecycle stage this webhook reports."""
        return Lifecycle(self.webhookType.removeprefix(TYPE_PREFIX))


class OtherEvent(BaseModel):
    """A webhook of a type this tool does not archive (reported and skipped)."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    webhookType: str


def event_id(payload: Any) -> str:
    """A stable id for one delivery: SHA-256 of its canonical JSON."""
    return canonical_event(payload)[0]


#: The encoder ``json.dumps`` would build for these options on every call, built once.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_event(payload: Any) -> tuple[str, str]:
    """The delivery's id and its canonical JSON, from one serialization.

    The journal stores the same text the id is the hash of, so a delivery is
    serialized once on its way in.
    """
    canonical = _CANONICAL.encode(payload)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest(), canonical


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        parts.append(f"field {dotted_path(err['loc'])}: {err['msg']}")
    return "; ".join(parts)


def _key_problem(data: TrackData) -> str | None:
    """Which field cannot become part of an archive key, and why (the layout's own rule)."""
    for field, value in (("sessionId", data.sessionId), ("participantId", data.participantId)):
        try:
            encode_component(value, what=field)
        except UnsafeIdentifier as exc:
            return f"field data.{field}: {exc}"
    for index, detail in enumerate(data.fileDetails):
        where = f"data.fileDetails[{index}]"
        try:
            filename = detail.filename
        except ValueError as exc:
            return f"field {where}: {exc}"
        named_by = "filePath" if detail.filePath and detail.filePath.strip("/") else "fileUrl"
        try:
            segment_key(data.sessionId, data.participantId, data.kind, filename)
        except UnsafeIdentifier as exc:
            return f"field {where}.{named_by}: {exc}"
    return None


def parse_event(payload: Any, *, source: str, line: int | None = None) -> TrackEvent | OtherEvent:
    """Validate one decoded webhook body; raise ``InputError`` naming what is wrong."""
    if not isinstance(payload, dict):
        raise InputError(
            f"expected a JSON object, found {type(payload).__name__}", source=source, line=line
        )
    unencodable = lone_surrogate(payload)
    if unencodable is not None:
        raise InputError(unencodable, source=source, line=line)
    webhook_type = payload.get("webhookType")
    if not isinstance(webhook_type, str) or not webhook_type:
        raise InputError("field webhookType: missing or not a string", source=source, line=line)
    try:
        if webhook_type.startswith(TYPE_PREFIX):
            try:
                Lifecycle(webhook_type.removeprefix(TYPE_PREFIX))
            except ValueError:
                return OtherEvent.model_validate(payload)
            event = TrackEvent.model_validate(payload)
            if event.stage is Lifecycle.STOPPED and not event.data.fileDetails:
                raise InputError(
                    "field data.fileDetails: a stopped webhook lists no files",
                    source=source,
                    line=line,
                )
            problem = _key_problem(event.data)
            if problem is not None:
                raise InputError(problem, source=source, line=line)
            return event
        return OtherEvent.model_validate(payload)
    except ValidationError as exc:
        raise InputError(_describe(exc), source=source, line=line) from None
