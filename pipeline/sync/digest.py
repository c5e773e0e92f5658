"""What an object's content is known to be, and how two such facts compare.

A sync decides "same content" from size plus any checksum both sides know:
CRC32C (base64, big-endian) and SHA-256 (hex). Either one agreeing, with no
checksum disagreeing, is enough; no shared checksum means "unknown", never
"same".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from storage_backends.base import ObjectStat


class Verdict(Enum):
    """The outcome of comparing two digests."""

    SAME = "same"
    DIFFERENT = "different"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Digest:
    """Size and whatever checksums are known for one object."""

    size: int
    crc32c: str | None = None
    sha256: str | None = None

    @property
    def has_checksum(self) -> bool:
        """Whether at least one checksum is known."""
        return bool(self.crc32c or self.sha256)

    def merged(self, other: Digest) -> Digest:
        """This digest with checksums it lacks taken from ``other`` (same size only)."""
        if other.size != self.size:
            return self
        return Digest(self.size, self.crc32c or other.crc32c, self.sha256 or other.sha256)


def digest_of(stat: ObjectStat) -> Digest:
    """The digest a listing or stat record carries."""
    sha = stat.sha256 or stat.metadata.get("sha256") or None
    return Digest(stat.size, stat.crc32c or None, sha.lower() if sha else None)


def compare(a: Digest, b: Digest) -> Verdict:
    """Compare by size, then by every checksum both sides know."""
    if a.size != b.size:
        return Verdict.DIFFERENT
    agreed = False
    for mine, theirs in ((a.crc32c, b.crc32c), (a.sha256, b.sha256)):
        if mine and theirs:
            if mine != theirs:
                return Verdict.DIFFERENT
            agreed = True
    return Verdict.SAME if agreed else Verdict.UNKNOWN
