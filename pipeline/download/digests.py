"""Whole-file digests computed in the same pass as the download."""

from __future__ import annotations

import base64
import hashlib

import google_crc32c


class Digests:
    """SHA-256, CRC32C and (optionally) MD5 of the bytes fed so far, in order."""

    def __init__(self, *, md5: bool = False):
        self._sha256 = hashlib.sha256()
        self._crc32c = google_crc32c.Checksum()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.size = 0

    @property
    def has_md5(self) -> bool:
        """Whether MD5 is being computed."""
        return self._md5 is not None

    def update(self, data: bytes | memoryview) -> None:
        """Feed the next bytes of the file (hashlib releases the GIL on large buffers)."""
        self._sha256.update(data)
        self._crc32c.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self.size += len(data)

    def update_all(self, pieces: list[bytes]) -> None:
        """Feed several pieces in order, without joining them into one copy first."""
        sha256, crc32c, md5 = self._sha256, self._crc32c, self._md5
        for piece in pieces:
            sha256.update(piece)
            crc32c.update(piece)
            if md5 is not None:
                md5.update(piece)
            self.size += len(piece)

    def sha256_hex(self) -> str:
        """SHA-256 as lowercase hex."""
        return self._sha256.hexdigest()

    def crc32c_b64(self) -> str:
        """CRC32C as base64 of the 4 big-endian bytes, the form S3 and GCS report."""
        return base64.b64encode(self._crc32c.digest()).decode("ascii")

    def md5_hex(self) -> str | None:
        """MD5 as lowercase hex, or ``None`` when it was not computed."""
        return self._md5.hexdigest() if self._md5 is not None else None
