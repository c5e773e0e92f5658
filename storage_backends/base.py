"""The contract every storage backend fulfils.

A backend is an archive root (a directory, or a bucket plus prefix) holding
objects under relative keys such as ``sess/part/audio/file.webm``. Backends are
synchronous and thread-safe; async callers run them with ``asyncio.to_thread``.

Checksums travel in the forms the services themselves use, so no conversion is
needed when comparing with a listing:

* ``crc32c``: base64 of the 4-byte big-endian CRC32C (S3 ``ChecksumCRC32C``,
  GCS ``crc32c``);
* ``sha256``: lower-case hex of the whole file, kept as object metadata
  ``sha256`` (S3 multipart SHA-256 is per-part, so it cannot serve).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, ClassVar

#: Largest document ``get_bytes`` reads whole unless told otherwise (manifests).
DEFAULT_MAX_SMALL_OBJECT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """What a backend knows about one object without reading it."""

    key: str
    size: int
    crc32c: str | None = None
    sha256: str | None = None
    #: ETag (S3), generation (GCS) or an mtime/inode token (local): pass it back
    #: as ``if_version`` for a compare-and-swap write.
    version: str | None = None
    updated: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class Backend(ABC):
    """One archive root on one storage service."""

    #: URL scheme this backend registers under (``file``, ``s3``, ``gs``).
    scheme: ClassVar[str]

    @property
    @abstractmethod
    def url(self) -> str:
        """The root as a URL, without credentials (used in every message)."""

    # -- writes ---------------------------------------------------------------

    @abstractmethod
    def put_file(
        self,
        key: str,
        path: Path,
        *,
        crc32c: str,
        sha256: str,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        if_absent: bool = False,
    ) -> ObjectStat:
        """Stream a local file to ``key``; the service checks ``crc32c``.

        ``sha256`` is stored as metadata. On a checksum mismatch raise
        ``IntegrityError`` and leave no object at the key. With ``if_absent``
        raise ``PreconditionFailed`` when an object already exists.
        """

    @abstractmethod
    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> ObjectStat:
        """Write a small document atomically.

        ``if_absent`` is create-only; ``if_version`` is compare-and-swap against
        ``ObjectStat.version``. A lost condition raises ``PreconditionFailed``.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; raise ``ObjectNotFound`` when there is none."""

    # -- reads ----------------------------------------------------------------

    @abstractmethod
    def stat(self, key: str) -> ObjectStat | None:
        """Describe the object at ``key`` or return ``None`` when absent."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectStat]:
        """Yield every object whose key starts with ``prefix``, paginating lazily."""

    @abstractmethod
    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open the object as a binary stream (``with backend.open_read(k) as f``)."""

    @abstractmethod
    def get_file(self, key: str, dest: Path) -> ObjectStat:
        """Download to ``dest`` (written via a temp file, renamed at the end)."""

    @abstractmethod
    def get_bytes(
        self, key: str, *, max_size: int = DEFAULT_MAX_SMALL_OBJECT
    ) -> tuple[bytes, ObjectStat]:
        """Read a small object whole, with the stat matching the bytes read."""

    # -- optional -------------------------------------------------------------

    def copy_within(
        self, source: Backend, source_key: str, key: str, *, if_absent: bool = False
    ) -> ObjectStat | None:
        """Server-side copy from ``source`` when both are on the same service.

        Return ``None`` when this pair cannot copy server-side; callers then
        stream through ``open_read``/``put_file``. Metadata (``sha256``) travels.
        """
        return None

    def local_path(self, key: str) -> Path | None:
        """The regular file behind ``key`` on this machine, when there is one.

        Lets a copy read a local object in place instead of streaming it; only
        the local backend has such files, with its own path checks applied.
        """
        return None

    def close(self) -> None:
        """Release connections; the backend is unusable afterwards."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"
