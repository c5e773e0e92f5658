"""``DownloadResult``: what one ``fetch`` produced and how it was verified."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.checks import Check
from pipeline.segment import StreamSummary
from storage_backends.sealed import FileSeal


@dataclass(slots=True)
class DownloadResult:
    """The outcome of one download: the staged file, its digests, media facts and checks.

    ``ok`` is true only when every check passed. On failure ``reason`` says what
    was expected and what was found, and ``path`` still holds any staged bytes.
    """

    ok: bool
    reason: str | None
    url: str
    final_url: str | None = None
    path: Path | None = None
    size: int = 0
    sha256: str | None = None
    crc32c: str | None = None
    md5: str | None = None
    container: str | None = None
    streams: list[StreamSummary] = field(default_factory=list)
    duration_seconds: float | None = None
    #: The start the media itself states (``DateUTC`` / ``creation_time``), if any.
    started_at: datetime | None = None
    attempts: int = 0
    bytes_transferred: int = 0
    checks: list[Check] = field(default_factory=list)
    #: The staged file's seal: its digests describe it as it is (never serialized:
    #: a file found again after a restart is proved by reading it).
    seal: FileSeal | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (paths and times as strings)."""
        return {
            "ok": self.ok,
            "reason": self.reason,
            "url": self.url,
            "final_url": self.final_url,
            "path": str(self.path) if self.path is not None else None,
            "size": self.size,
            "sha256": self.sha256,
            "crc32c": self.crc32c,
            "md5": self.md5,
            "container": self.container,
            "streams": [{"type": s.type, "codec": s.codec} for s in self.streams],
            "duration_seconds": self.duration_seconds,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "attempts": self.attempts,
            "bytes_transferred": self.bytes_transferred,
            "checks": [c.to_json() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: Path | None = None) -> DownloadResult:
        """Rebuild a result from :meth:`as_dict` (e.g. one kept in a journal)."""
        started = data.get("started_at")
        return cls(
            ok=data["ok"],
            reason=data.get("reason"),
            url=data["url"],
            final_url=data.get("final_url"),
            path=path,
            size=data["size"],
            sha256=data.get("sha256"),
            crc32c=data.get("crc32c"),
            md5=data.get("md5"),
            container=data.get("container"),
            streams=[
                StreamSummary(type=s["type"], codec=s["codec"]) for s in data.get("streams", [])
            ],
            duration_seconds=data.get("duration_seconds"),
            started_at=datetime.fromisoformat(started) if started else None,
            attempts=data.get("attempts", 0),
            bytes_transferred=data.get("bytes_transferred", 0),
            checks=[Check(**c) for c in data.get("checks", [])],
        )
