"""What an object's content is known to be, and how two such facts compare.

A sync decides "same content" from size plus any checksum both sides know:
CRC32C (base64, big-endian) and SHA-256 (hex). Either one agreeing, with no
checksum disagreeing, is enough; no shared checksum means "unknown", never
"same".

Proving bytes is stricter than comparing copies: every fact recorded for an
object (its size and each checksum) must be shown to hold (``disproof``).
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

    def describe(self) -> str:
        """The recorded facts, for a message."""
        sums = [f"{name} {value}" for name, value in self._checksums() if value]
        return ", ".join([f"{self.size} bytes", *sums])

    def _checksums(self) -> tuple[tuple[str, str | None], ...]:
        return (("CRC32C", self.crc32c), ("SHA-256", self.sha256))


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


def disproof(
    recorded: Digest, got: Digest, *, checksums: tuple[str, ...] = ("CRC32C", "SHA-256")
) -> str | None:
    """Why ``got`` is not the content ``recorded``, or ``None`` when it is proved.

    The size and every checksum named in ``checksums`` that ``recorded`` holds
    must be present in ``got`` and equal; a checksum outside ``checksums`` is
    compared only when ``got`` has it (a server-side copy carries the source's
    SHA-256 metadata, which proves nothing about the bytes copied).
    """
    if got.size != recorded.size:
        return f"{got.size} bytes where {recorded.size} were recorded"
    for (name, want), (_, have) in zip(recorded._checksums(), got._checksums(), strict=True):
        if not want:
            continue
        if have is None or have == "":
            if name in checksums:
                return f"no {name} to compare with the recorded {want}"
            continue
        if have != want:
            return f"{name} {have} where {want} was recorded"
    return None


def reconciled(a: Digest, b: Digest) -> Digest | None:
    """Two records of one object as one digest, or ``None`` when they contradict each other."""
    if compare(a, b) is Verdict.DIFFERENT:
        return None
    return Digest(a.size, a.crc32c or b.crc32c, a.sha256 or b.sha256)
