"""Putting a verified staged file at its final key.

An occupied key is never overwritten: identical content counts as already
archived, different content goes to a distinct key and is reported.
"""

from __future__ import annotations

import logging
from pathlib import Path

from storage_backends import (
    Backend,
    IntegrityError,
    ObjectStat,
    PreconditionFailed,
    StorageError,
)
from storage_backends.checksums import CHUNK_SIZE, Hasher

from ..download import DownloadResult
from ..layout import conflict_key
from ..manifest import utcnow
from ..segment import StoredSegment, content_type_for

log = logging.getLogger(__name__)



def _same_content(backend: Backend, stat: ObjectStat, result: DownloadResult) -> bool:
    """Whether the object already at a key holds exactly the verified bytes.

    Its recorded checksums can only rule it out: a record can be stale (a local
    file changed in place) and a CRC32C can agree by design, so a candidate is
    read back and both checksums proved before it counts as already archived.
    """
    if stat.size != result.size:
        return False
    if stat.crc32c is not None and stat.crc32c != result.crc32c:
        return False
    if stat.sha256 is not None and stat.sha256 != result.sha256:
        return False
    return holds_exactly(backend, stat.key, result)


def _put_create_only(
    backend: Backend, key: str, result: DownloadResult, path: Path
) -> tuple[ObjectStat | None, bool]:
    """Create ``key``.

    ``(stat, False)`` when written now, ``(stat, True)`` when it already held
    this content, ``(None, True)`` when it holds other content.
    """
    assert result.crc32c is not None and result.sha256 is not None
    content_type = content_type_for(key, result.container or "")
    for attempt in (1, 2):
        try:
            stat = backend.put_file(
                key,
                path,
                crc32c=result.crc32c,
                sha256=result.sha256,
                content_type=content_type,
                if_absent=True,
                md5=result.md5,
                # Sealed: the digests were taken from the bytes as they were staged, so
                # the backend stores the file without reading it again (a link on disk).
                sealed=result.seal,
            )
            return stat, False
        except PreconditionFailed:
            existing = backend.stat(key)
            if existing is None:
                continue  # deleted between our write and our look: try once more
            if _same_content(backend, existing, result):
                return existing, True
            return None, True
        except IntegrityError:
            # The bytes on disk were verified; a corrupted upload is retried once.
            if attempt == 2:
                raise
            log.warning("upload of %s was corrupted in transit; retrying once", key)
    raise PreconditionFailed(
        "the key kept changing while it was written", backend=backend.url, key=key
    )


def store_verified(backend: Backend, key: str, result: DownloadResult) -> StoredSegment:
    """Store a verified download at ``key`` (or its conflict copy); return its record."""
    assert result.path is not None
    conflict_with = None
    stat, existed = _put_create_only(backend, key, result, result.path)
    final_key = key
    if stat is None:
        assert result.sha256 is not None
        final_key = conflict_key(key, result.sha256)
        conflict_with = key
        log.warning(
            "conflict: %s already holds different content; keeping the new file at %s",
            key,
            final_key,
        )
        stat, existed = _put_create_only(backend, final_key, result, result.path)
        if stat is None:
            raise PreconditionFailed(
                "conflict key holds different content too", backend=backend.url, key=final_key
            )
    return StoredSegment.of_download(
        result, key=final_key, archived_at=utcnow(), conflict_with=conflict_with, already=existed
    )


def holds_exactly(backend: Backend, key: str, result: DownloadResult) -> bool:
    """Read the object at ``key`` back and prove its size and both checksums against ``result``.

    Metadata alone is not proof: a local file truncated after it was written
    still carries the SHA-256 recorded when it was whole.
    """
    stat = backend.stat(key)
    if stat is None or stat.size != result.size:
        return False
    hasher = Hasher()
    try:
        with backend.open_read(key) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
    except StorageError:
        return False
    return (hasher.size, hasher.crc32c, hasher.sha256) == (
        result.size,
        result.crc32c,
        result.sha256,
    )
