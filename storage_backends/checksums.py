"""Streaming CRC32C and SHA-256 (and MD5 on request) in the forms the storage services use.

``crc32c`` is base64 of the 4-byte big-endian CRC32C (S3 ``ChecksumCRC32C``,
GCS ``crc32c``); ``sha256`` and ``md5`` are lower-case hex. All are computed
in one pass with bounded memory: the same :class:`Hasher` serves uploads,
copies and the download engine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path

import google_crc32c

#: Read size for hashing and copying local files.
CHUNK_SIZE = 1024 * 1024

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MD5_HEX = re.compile(r"[0-9a-f]{32}")


def crc32c_b64(value: int) -> str:
    """Encode a CRC32C integer as base64 of its 4 big-endian bytes."""
    return base64.b64encode(value.to_bytes(4, "big")).decode("ascii")


def crc32c_value(b64: str) -> int:
    """Decode a base64 CRC32C back to its integer; ``ValueError`` if malformed."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a base64 CRC32C: {b64!r}") from exc
    if len(raw) != 4:
        raise ValueError(f"not a base64 CRC32C (need 4 bytes): {b64!r}")
    return int.from_bytes(raw, "big")


def normalize_crc32c(b64: str) -> str:
    """Return the canonical base64 form of a CRC32C; ``ValueError`` if malformed."""
    return crc32c_b64(crc32c_value(b64))


def normalize_sha256(hex_digest: str) -> str:
    """Return a SHA-256 hex digest in lower case; ``ValueError`` if malformed."""
    lowered = hex_digest.lower()
    if not _SHA256_HEX.fullmatch(lowered):
        raise ValueError(f"not a SHA-256 hex digest: {hex_digest!r}")
    return lowered


def normalize_md5(hex_digest: str) -> str:
    """Return an MD5 hex digest in lower case; ``ValueError`` if malformed."""
    lowered = hex_digest.lower()
    if not _MD5_HEX.fullmatch(lowered):
        raise ValueError(f"not an MD5 hex digest: {hex_digest!r}")
    return lowered


class Hasher:
    """Accumulates CRC32C, SHA-256 (unless turned off), MD5 (if asked) and size over chunks."""

    def __init__(self, *, sha256: bool = True, md5: bool = False) -> None:
        self._crc = google_crc32c.Checksum()
        self._sha = hashlib.sha256() if sha256 else None
        # MD5 only when a source announces one to compare with; never a security check.
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add the next chunk."""
        if not isinstance(data, bytes):
            # google-crc32c's C extension accepts only bytes.
            data = bytes(data)
        self._crc.update(data)
        if self._sha is not None:
            self._sha.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self.size += len(data)

    def update_all(self, pieces: list[bytes]) -> None:
        """Add several chunks in order, without joining them into one copy first."""
        for piece in pieces:
            self.update(piece)

    @property
    def crc32c(self) -> str:
        """CRC32C so far, base64 big-endian."""
        return base64.b64encode(self._crc.digest()).decode("ascii")

    @property
    def sha256(self) -> str:
        """SHA-256 so far, lower-case hex."""
        if self._sha is None:
            raise ValueError("this Hasher was created without SHA-256")
        return self._sha.hexdigest()

    @property
    def md5(self) -> str | None:
        """MD5 so far, lower-case hex; ``None`` unless asked for at creation."""
        return self._md5.hexdigest() if self._md5 is not None else None


def hash_bytes(data: bytes) -> tuple[str, str]:
    """Return ``(crc32c_b64, sha256_hex)`` of a small document."""
    hasher = Hasher()
    hasher.update(data)
    return hasher.crc32c, hasher.sha256


def hash_file(path: Path | str, *, chunk_size: int = CHUNK_SIZE) -> tuple[str, str, int]:
    """Return ``(crc32c_b64, sha256_hex, size)`` of a local file, read in chunks."""
    hasher = Hasher()
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            hasher.update(chunk)
    return hasher.crc32c, hasher.sha256, hasher.size
