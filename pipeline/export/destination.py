"""Where exports go, how a finished one is published, and how an unchanged one is recognised.

An export is written to a local temporary file first and only then put on the
destination with its CRC32C checked by the service (local disk: temp file and
rename), so the destination holds either the whole new file or nothing new.
The digest of everything the file was made from rides along as object metadata
(``export-inputs``): a later run with the same inputs finds it and does nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage_backends import Backend, ObjectStat, hash_file

from ..layout import encode_component, export_prefix
from .timeline import Placement

#: Object metadata naming the inputs digest of an export.
INPUTS_METADATA = "export-inputs"
#: Bump when the same inputs would now give a different file.
EXPORT_REVISION = 2


@dataclass(frozen=True, slots=True)
class Destination:
    """A backend and the key prefix exports of one session go under."""

    backend: Backend
    prefix: str
    #: True when this is the archive itself: exports are then listed in its manifest.
    in_archive: bool

    @classmethod
    def in_session(cls, backend: Backend, session_id: str) -> Destination:
        """The session's own exports folder inside the archive."""
        return cls(backend, export_prefix(session_id), True)

    @classmethod
    def elsewhere(cls, backend: Backend, session_id: str) -> Destination:
        """``<root>/<sessionId>/`` on another backend or directory."""
        return cls(backend, encode_component(session_id, what="sessionId") + "/", False)

    def key(self, name: str) -> str:
        """The full key of an export named ``name``."""
        return self.prefix + name

    def url(self, key: str) -> str:
        """Where a user finds the object: its path on local disk, else the backend URL and key.

        A key may hold ``%`` (encoded IDs, the exports folder), which a ``file://``
        URL would read as an escape, so local objects are shown as paths.
        """
        path = self.backend.local_path(key)
        if path is not None:
            return str(path)
        return f"{self.backend.url.rstrip('/')}/{key}"

    def existing(self, key: str, inputs: str) -> ObjectStat | None:
        """The stored export at ``key`` when it was made from exactly ``inputs``."""
        stat = self.backend.stat(key)
        if stat is None or stat.metadata.get(INPUTS_METADATA) != inputs:
            return None
        return stat

    def publish(
        self,
        key: str,
        path: Path,
        *,
        content_type: str,
        inputs: str,
        extra: dict[str, str] | None = None,
    ) -> tuple[int, str, str]:
        """Put the finished file at ``key``; returns its size, CRC32C and SHA-256."""
        crc32c, sha256, size = hash_file(path)
        self.backend.put_file(
            key,
            path,
            crc32c=crc32c,
            sha256=sha256,
            content_type=content_type,
            metadata={INPUTS_METADATA: inputs, **(extra or {})},
        )
        return size, crc32c, sha256


def inputs_digest(
    *, mode: str, fmt: str, pair: str, zero_ms: int | None, end: float | None,
    placements: Sequence[Placement],
) -> str:
    """SHA-256 over everything that decides an export's bytes."""
    document: dict[str, Any] = {
        "revision": EXPORT_REVISION,
        "mode": mode,
        "format": fmt,
        "pair": pair,
        "zeroMs": zero_ms,
        "end": end,
        "sources": [
            [p.kind, p.segment.key, p.segment.sha256, p.offset, p.duration] for p in placements
        ],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
