"""The quarantine: a refused file's bytes kept for inspection, beside the reason it was refused.

Files are named by the segment id (a fixed-length hash), never by the
segment's key, so every name fits any file system whatever the participant
or file names were; the reason file records the key and source URL. A
segment has at most one copy: a new failure of the same segment replaces its
old bytes and reason. The bytes kept stay within a size budget: when a new
copy would exceed it, the oldest copies of other segments are dropped first
(their reason files stay), and a copy larger than the whole budget is not kept.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ..manifest import utcnow

log = logging.getLogger(__name__)

BYTES_SUFFIX = ".bytes"
REASON_SUFFIX = ".reason.json"


class Quarantine:
    """One directory of refused files, at most ``max_bytes`` of them (``None``: no limit)."""

    def __init__(self, root: Path, *, max_bytes: int | None = None) -> None:
        self.root = root.absolute()  # reasons and manifests name the copy wherever they are read
        self.max_bytes = max_bytes

    def bytes_path(self, segment_id: str) -> Path:
        """Where a segment's refused bytes are kept."""
        return self.root / f"{segment_id}{BYTES_SUFFIX}"

    def reason_path(self, segment_id: str) -> Path:
        """Where the reason a segment was refused is kept."""
        return self.root / f"{segment_id}{REASON_SUFFIX}"

    def keep(self, segment_id: str, staged: Path | None, reason: dict[str, Any]) -> Path | None:
        """Move ``staged`` (if any) in as this segment's only copy and write its reason.

        Returns where the bytes are kept, or ``None`` when there were none or
        they do not fit the budget (the reason says which).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.bytes_path(segment_id)
        kept: Path | None = None
        if staged is not None and staged.exists():
            shutil.move(staged, target)  # replaces an earlier copy of the same segment
            kept = target
        else:
            target.unlink(missing_ok=True)  # an old copy would not match this reason
        if kept is not None and not self._fit(kept):
            kept.unlink(missing_ok=True)
            kept = None
            reason = {**reason, "bytes_dropped": "larger than state.quarantine_max_bytes"}
        document = {
            **reason,
            "quarantined_at": utcnow().isoformat(),
            "staged_bytes": str(kept) if kept else None,
        }
        temporary = self.root / f".{segment_id}{REASON_SUFFIX}.tmp"
        temporary.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(temporary, self.reason_path(segment_id))
        return kept

    def _fit(self, newest: Path) -> bool:
        """Drop the oldest other copies until the budget holds; ``False`` if ``newest`` alone exceeds it."""
        if self.max_bytes is None:
            return True
        copies = []
        for path in self.root.glob(f"*{BYTES_SUFFIX}"):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue  # dropped meanwhile by another run
            copies.append((info.st_mtime_ns, path, info.st_size))
        total = sum(size for _, _, size in copies)
        if newest.stat().st_size > self.max_bytes:
            return False
        for _, path, size in sorted(copies):
            if total <= self.max_bytes:
                break
            if path == newest:
                continue
            path.unlink(missing_ok=True)
            total -= size
            log.warning("quarantine over its budget: dropped the bytes of %s", path.name)
        return True


__all__ = ["Quarantine"]
