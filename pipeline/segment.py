"""A stored segment: the one record of an archived file, from the store step to the manifest.

The store step returns a :class:`StoredSegment`; the journal keeps its
:meth:`~StoredSegment.to_json` form and gives it back through
:meth:`~StoredSegment.from_json` (rows written by earlier versions load
too); the manifest builder, the run summary and reconcile read its fields.

When a segment started is worked out here and nowhere else
(:meth:`SegmentStart.derive`): the epoch milliseconds in its file name (the
recording service's own clock), else the start its media states, else only
its order of arrival.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .checks import Check

#: The media type stored with each container the verifier recognises.
MEDIA_TYPES = {"webm": "video/webm", "matroska": "video/x-matroska", "mp4": "video/mp4"}
OCTET_STREAM = "application/octet-stream"

if TYPE_CHECKING:
    from .download.result import DownloadResult

# Epoch milliseconds accepted as a recording start: 2015-01-01 to 2100-01-01 UTC.
# Outside this range the digits are some other number (a participant id, a counter).
_EARLIEST_MS = 1_420_070_400_000
_LATEST_MS = 4_102_444_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms_in_name(name: str) -> int | None:
    """The epoch milliseconds in a name like ``track_recording_{participant}_{kind}_{epochMs}.webm``.

    Takes the last ``_``-separated field before the extension, so participant ids that
    contain underscores do no harm; returns None unless it is a plausible epoch in ms.
    """
    base = name.rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    field = stem.rsplit("_", 1)[-1]
    if not field.isascii() or not field.isdigit() or len(field) > 13:
        return None
    millis = int(field)
    if not _EARLIEST_MS <= millis < _LATEST_MS:
        return None
    return millis


def started_at_from_filename(name: str) -> datetime | None:
    """The start time a service file name states (see :func:`epoch_ms_in_name`), or None."""
    millis = epoch_ms_in_name(name)
    return None if millis is None else _EPOCH + timedelta(milliseconds=millis)


def content_type_for(key: str, container: str | None = None) -> str:
    """The media type stored with an object: from its verified container, else from its name."""
    if container is not None:
        return MEDIA_TYPES.get(container, OCTET_STREAM)
    if key.endswith(".webm"):
        return MEDIA_TYPES["webm"]
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or OCTET_STREAM


class StartSource(StrEnum):
    """Where a segment's start time came from, most trusted first."""

    NAME = "name"  # epoch milliseconds in the file name
    MEDIA = "media"  # the start the media itself states (DateUTC / creation_time)
    ARRIVAL = "arrival"  # nothing known: segments are ordered by arrival


@dataclass(frozen=True, slots=True)
class SegmentStart:
    """When a segment started, and how that is known."""

    source: StartSource
    at: datetime | None = None
    epoch_ms: int | None = None

    @classmethod
    def derive(
        cls, *, names: Iterable[str | None], media_started_at: datetime | None
    ) -> SegmentStart:
        """The first epoch found in ``names``, else the media's stated start, else arrival."""
        for name in names:
            millis = epoch_ms_in_name(name) if name else None
            if millis is not None:
                return cls(StartSource.NAME, _EPOCH + timedelta(milliseconds=millis), millis)
        if media_started_at is not None:
            return cls(
                StartSource.MEDIA, media_started_at, int(media_started_at.timestamp() * 1000)
            )
        return cls(StartSource.ARRIVAL)

    @classmethod
    def recorded(cls, *, epoch_ms: int | None, at: datetime | None) -> SegmentStart:
        """The start a manifest entry recorded (``startedAtMs`` is set only from a name)."""
        if epoch_ms is not None:
            return cls(StartSource.NAME, at or _EPOCH + timedelta(milliseconds=epoch_ms), epoch_ms)
        return cls.derive(names=(), media_started_at=at)

    def order_key(self, arrival: int, filename: str) -> tuple[Any, ...]:
        """Sort key among a track's segments: known starts first, in time, then by arrival."""
        if self.epoch_ms is not None:
            return (0, self.epoch_ms, arrival)
        return (1, arrival, filename)


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """One media stream: ``type`` (audio, video, ...) and ``codec`` name."""

    type: str
    codec: str


def _json_time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True, slots=True)
class StoredSegment:
    """A verified download stored at ``key``: what the journal keeps and the manifest shows.

    ``conflict_with`` names the natural key when different content already
    held it (``key`` is then the conflict copy); ``already`` marks content
    that an earlier or concurrent run had stored, so it is not new work.
    """

    key: str
    size: int
    sha256: str
    crc32c: str
    archived_at: datetime
    url: str
    final_url: str | None = None
    md5: str | None = None
    container: str | None = None
    streams: tuple[StreamSummary, ...] = ()
    duration_seconds: float | None = None
    #: The start the media states, if any (see :meth:`start`).
    media_started_at: datetime | None = None
    conflict_with: str | None = None
    already: bool = False
    attempts: int = 0
    bytes_transferred: int = 0
    checks: tuple[Check, ...] = ()

    @classmethod
    def of_download(
        cls,
        result: DownloadResult,
        *,
        key: str,
        archived_at: datetime,
        conflict_with: str | None = None,
        already: bool = False,
    ) -> StoredSegment:
        """The record of ``result`` (verified: size and digests known) stored at ``key``."""
        if not result.ok or result.sha256 is None or result.crc32c is None:
            raise ValueError(f"{result.url}: only a verified download can be stored")
        return cls(
            key=key,
            size=result.size,
            sha256=result.sha256,
            crc32c=result.crc32c,
            archived_at=archived_at,
            url=result.url,
            final_url=result.final_url,
            md5=result.md5,
            container=result.container,
            streams=tuple(result.streams),
            duration_seconds=result.duration_seconds,
            media_started_at=result.started_at,
            conflict_with=conflict_with,
            already=already,
            attempts=result.attempts,
            bytes_transferred=result.bytes_transferred,
            checks=tuple(result.checks),
        )

    @property
    def filename(self) -> str:
        """The stored object's own name (differs from the source's for a conflict copy)."""
        return self.key.rsplit("/", 1)[-1]

    def start(self, source_filename: str) -> SegmentStart:
        """When this segment started: see :meth:`SegmentStart.derive`.

        Names are tried in order: the one the webhook gave, then the last part
        of the URL the bytes finally came from.
        """
        url = self.final_url or self.url
        url_name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        return SegmentStart.derive(
            names=(source_filename, url_name), media_started_at=self.media_started_at
        )

    def to_json(self) -> dict[str, Any]:
        """The journal's form (also what earlier versions wrote: same keys, same meaning)."""
        return {
            "ok": True,
            "reason": None,
            "url": self.url,
            "final_url": self.final_url,
            "size": self.size,
            "sha256": self.sha256,
            "crc32c": self.crc32c,
            "md5": self.md5,
            "container": self.container,
            "streams": [{"type": s.type, "codec": s.codec} for s in self.streams],
            "duration_seconds": self.duration_seconds,
            "started_at": _json_time(self.media_started_at),
            "attempts": self.attempts,
            "bytes_transferred": self.bytes_transferred,
            "checks": [check.to_json() for check in self.checks],
            "key": self.key,
            "conflict_with": self.conflict_with,
            "archived_at": self.archived_at.isoformat(),
            "already": self.already,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredSegment:
        """Rebuild from :meth:`to_json`, or from a row an earlier version wrote.

        Rows from before ``already`` existed read as new work, as they were
        counted then. A row missing a required fact raises ``ValueError``
        naming it.
        """
        required = ("key", "size", "sha256", "crc32c", "archived_at")
        missing = [name for name in required if data.get(name) is None]
        if missing:
            raise ValueError(f"stored segment record lacks {', '.join(missing)}")
        return cls(
            key=data["key"],
            size=int(data["size"]),
            sha256=data["sha256"],
            crc32c=data["crc32c"],
            archived_at=datetime.fromisoformat(data["archived_at"]),
            url=data.get("url") or "",
            final_url=data.get("final_url"),
            md5=data.get("md5"),
            container=data.get("container"),
            streams=tuple(
                StreamSummary(type=s["type"], codec=s["codec"]) for s in data.get("streams") or ()
            ),
            duration_seconds=data.get("duration_seconds"),
            media_started_at=_parse_time(data.get("started_at")),
            conflict_with=data.get("conflict_with"),
            already=bool(data.get("already", False)),
            attempts=int(data.get("attempts") or 0),
            bytes_transferred=int(data.get("bytes_transferred") or 0),
            checks=tuple(Check(**c) for c in data.get("checks") or ()),
        )
