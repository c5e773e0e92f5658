"""Manifests in a sync: when one may replace another, and how it is written.

A manifest grows as a session's recordings arrive, so a destination manifest
that differs from the source's is usually an older copy of it. Both are
merged documents, so that is decidable: if folding the destination's entries
into the source's changes nothing, the source supersedes it. If the
destination holds entries the source lacks, the two have diverged and the
destination is left alone unless ``--overwrite``.
"""

from __future__ import annotations

import tempfile
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from storage_backends.base import Backend, ObjectStat
from storage_backends.checksums import hash_bytes

from ..manifest import Manifest, ManifestUpdate, merge
from .copy import CopyMismatch

#: Fields that a merge recomputes or stamps, so they say nothing about content.
_DERIVED = {"updatedAt", "summary", "totals"}


class Relation(Enum):
    """How a destination manifest relates to the source's."""

    SUPERSEDES = "supersedes"  # the source holds everything the destination does
    CONTAINED = "contained"  # the destination already holds everything the source does
    DIVERGED = "diverged"  # each holds something the other lacks


def parse(data: bytes) -> Manifest | None:
    """A manifest document, or ``None`` when the bytes are not one."""
    try:
        return Manifest.from_json(data)
    except ValidationError:
        return None


def _as_update(manifest: Manifest) -> ManifestUpdate:
    lifecycle = [
        (pid, kind, stage, entry.updatedAt)
        for pid, kinds in manifest.lifecycle.items()
        for kind, entry in kinds.items()
        for stage in entry.seen or [entry.state]
    ]
    return ManifestUpdate(
        session_id=manifest.sessionId,
        meeting_id=manifest.meetingId,
        segments=manifest.segments(),
        failures=list(manifest.failures),
        lifecycle=lifecycle,
        exports=list(manifest.exports),
    )


def _content(manifest: Manifest) -> dict[str, Any]:
    return manifest.model_dump(mode="json", exclude=_DERIVED)


def relation(source: bytes, dest: bytes) -> Relation:
    """Compare two stored manifests of one session by their content."""
    src, dst = parse(source), parse(dest)
    if src is None or dst is None or src.sessionId != dst.sessionId:
        return Relation.DIVERGED
    if _content(merge(src, _as_update(dst))) == _content(src):
        return Relation.SUPERSEDES
    if _content(merge(dst, _as_update(src))) == _content(dst):
        return Relation.CONTAINED
    return Relation.DIVERGED


def listed_keys(data: bytes) -> list[str] | None:
    """The segment and export keys a manifest names (``None`` when it is not a manifest)."""
    manifest = parse(data)
    if manifest is None:
        return None
    return [seg.key for _, _, seg in manifest.segments()] + [e.key for e in manifest.exports]


def write_manifest(
    dest: Backend, key: str, data: bytes, *, replace_version: str | None, temp_dir: Path | None
) -> ObjectStat:
    """Write manifest bytes to ``dest``, verified.

    A new manifest goes up create-only with its CRC32C checked by the service.
    Replacing one is a compare-and-swap against the version planned on (so a
    writer at the destination is never clobbered), then read back to verify.
    """
    crc, sha = hash_bytes(data)
    if replace_version is None:
        with tempfile.NamedTemporaryFile(dir=temp_dir, prefix=".sync-", suffix=".json") as tmp:
            tmp.write(data)
            tmp.flush()
            return dest.put_file(
                key,
                Path(tmp.name),
                crc32c=crc,
                sha256=sha,
                content_type="application/json",
                if_absent=True,
            )
    dest.put_bytes(key, data, content_type="application/json", if_version=replace_version)
    stored, stat = dest.get_bytes(key)
    if stored != data:
        raise CopyMismatch(f"{key}: the manifest read back differs from the one written")
    return stat
