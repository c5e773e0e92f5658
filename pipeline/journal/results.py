"""What a segment's row keeps beside its state, each fact with one typed owner.

A done row keeps its :class:`~pipeline.segment.StoredSegment`; a failed row a
:class:`Refusal` (where its bytes were quarantined); a claimed row may carry a
:class:`VerifiedDownload` that an interrupted worker left for the next one.
Each serializes itself (``to_json``) and is read back through
``SegmentRecord``, so no other module reads the journal's JSON by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.download.result import DownloadResult


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a failed segment's bytes are not archived: where they were kept, and its download."""

    #: The quarantined copy of the refused bytes (``None``: there were none, or keeping them failed).
    quarantine: str | None = None
    #: The download that was refused, when one finished (not for an unexpected error).
    download: DownloadResult | None = None

    def to_json(self) -> dict[str, Any]:
        """The journal's form (the keys earlier versions wrote)."""
        data: dict[str, Any] = {"quarantine": self.quarantine}
        if self.download is not None:
            data["download"] = self.download.as_dict()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Refusal:
        """Rebuild from :meth:`to_json`; a row without one (older versions) reads as empty."""
        if not data:
            return cls()
        download = data.get("download")
        return cls(
            quarantine=data.get("quarantine"),
            download=DownloadResult.from_dict(download) if download else None,
        )


@dataclass(frozen=True, slots=True)
class VerifiedDownload:
    """A claimed segment's download, verified and staged but not yet stored.

    Noted in the journal (:meth:`~pipeline.journal.Journal.note_verified`) so
    that the next claimant after a crash can recognise the stored object, or
    reuse the staged file, instead of downloading again.
    """

    download: DownloadResult

    @property
    def staged_name(self) -> str:
        """The name of the staged file it was verified in ('' when none was noted)."""
        return self.download.path.name if self.download.path is not None else ""

    def to_json(self) -> dict[str, Any]:
        """The journal's form (the keys earlier versions wrote)."""
        return {"verified": self.download.as_dict()}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> VerifiedDownload | None:
        """The verified download a row noted, or ``None`` when it noted none that passed."""
        noted = (data or {}).get("verified")
        if not noted or not noted.get("ok"):
            return None
        path = noted.get("path")
        return cls(DownloadResult.from_dict(noted, path=Path(path) if path else None))
