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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from storage_backends.checksums import normalize_crc32c, normalize_md5, normalize_sha256
from storage_backends.errors import IntegrityError, InvalidKey
from storage_backends.keys import MAX_KEY_BYTES, validate_key, validate_prefix

if TYPE_CHECKING:
    from storage_backends.sealed import FileSeal

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


@dataclass(frozen=True, slots=True, kw_only=True)
class PutRequest:
    """One write as ``Backend``'s public methods checked it, for a backend's own operation.

    The key is valid for the backend and at most one condition is set:
    ``if_absent`` (create-only) or ``if_version`` (compare-and-swap against
    ``ObjectStat.version``, which only ``put_bytes`` offers).
    """

    key: str
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    if_absent: bool = False
    if_version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FilePut(PutRequest):
    """A file's write: the caller's checksums of it, normalized, come along."""

    crc32c: str
    sha256: str
    #: Lower-case hex MD5, sent for the service to check where known (sealed files).
    md5: str | None = None


class Backend(ABC):
    """One archive root on one storage service.

    The public methods are the contract: each checks its key with the one key
    rule (``keys.validate_key``), normalizes checksums and checks its
    preconditions' arguments once, here, then calls the backend's private
    operation (``_put_file``, ``_stat`` ...), which may trust its arguments.
    """

    #: URL scheme this backend registers under (``file``, ``s3``, ``gs``).
    scheme: ClassVar[str]

    @property
    @abstractmethod
    def url(self) -> str:
        """The root as a URL, without credentials (used in every message)."""

    @property
    def location(self) -> tuple[str, ...]:
        """Where the root lives, as a path of names from its storage service down.

        One root lies inside another when its location starts with the other's
        (see :func:`roots_overlap`). Backends whose URL does not say which
        service holds the root (an S3 endpoint) add it here.
        """
        return tuple(part for part in self.url.split("/") if part)

    @property
    def max_key_bytes(self) -> int:
        """The longest key this root holds: 1024 bytes less any bucket prefix."""
        return MAX_KEY_BYTES

    def check_key(self, key: str) -> str:
        """Return ``key`` if this backend may store it, else raise ``InvalidKey``."""
        return validate_key(key, max_bytes=self.max_key_bytes, backend=self.url)

    # -- writes ---------------------------------------------------------------

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
        md5: str | None = None,
        sealed: FileSeal | None = None,
    ) -> ObjectStat:
        """Stream a local file to ``key``; the service checks ``crc32c``.

        ``sha256`` is stored as metadata. On a checksum mismatch raise
        ``IntegrityError`` and leave no object at the key. With ``if_absent``
        raise ``PreconditionFailed`` when an object already exists.

        ``sealed`` says the checksums were computed from the very bytes written
        to the file and the file is unchanged since (``sealed.FileSeal``): the
        backend then takes them as given instead of hashing the file again (the
        local backend links the file itself into place where it can; S3 and GCS
        send them, and ``md5`` when known, for the service to check), and the
        file is handed over: once stored it is no longer at ``path``. A file
        whose seal does not hold is refused with ``IntegrityError`` and nothing
        is written.
        """
        put = FilePut(
            key=self.check_key(key),
            crc32c=normalize_crc32c(crc32c),
            sha256=normalize_sha256(sha256),
            content_type=content_type,
            metadata=dict(metadata or {}),
            if_absent=if_absent,
        )
        if sealed is None:
            return self._put_file(path, put)
        if not sealed.holds_for(path):
            raise IntegrityError(
                f"file {path} changed after its checksums were computed; not stored",
                backend=self.url,
                key=key,
            )
        if md5 is not None:
            put = replace(put, md5=normalize_md5(md5))
        stat = self._put_sealed(path, sealed, put)
        path.unlink(missing_ok=True)
        return stat

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
        if if_absent and if_version is not None:
            raise ValueError("if_absent and if_version are mutually exclusive")
        put = PutRequest(
            key=self.check_key(key),
            content_type=content_type,
            metadata=dict(metadata or {}),
            if_absent=if_absent,
            if_version=if_version,
        )
        return self._put_bytes(data, put)

    def delete(self, key: str) -> None:
        """Remove the object; raise ``ObjectNotFound`` when there is none."""
        self._delete(self.check_key(key))

    # -- reads ----------------------------------------------------------------

    def stat(self, key: str) -> ObjectStat | None:
        """Describe the object at ``key`` or return ``None`` when absent."""
        return self._stat(self.check_key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectStat]:
        """Yield every object whose key starts with ``prefix``, paginating lazily.

        The prefix is checked at once, not at the first ``next``.
        """
        validate_prefix(prefix, max_bytes=self.max_key_bytes)
        return self._list(prefix)

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open the object as a binary stream (``with backend.open_read(k) as f``)."""
        return self._open_read(self.check_key(key))

    def get_file(self, key: str, dest: Path) -> ObjectStat:
        """Download to ``dest`` (written via a temp file, renamed at the end)."""
        return self._get_file(self.check_key(key), dest)

    def get_bytes(
        self, key: str, *, max_size: int = DEFAULT_MAX_SMALL_OBJECT
    ) -> tuple[bytes, ObjectStat]:
        """Read a small object whole, with the stat matching the bytes read."""
        return self._get_bytes(self.check_key(key), max_size=max_size)

    # -- optional -------------------------------------------------------------

    def copy_within(
        self, source: Backend, source_key: str, key: str, *, if_absent: bool = False
    ) -> ObjectStat | None:
        """Server-side copy from ``source`` when both are on the same service.

        Return ``None`` when this pair cannot copy server-side; callers then
        stream through ``open_read``/``put_file``. Metadata (``sha256``) travels.
        """
        source.check_key(source_key)
        self.check_key(key)
        return self._copy_within(source, source_key, key, if_absent=if_absent)

    def run_view(self) -> Backend:
        """This root for one run of many operations (a sync), sharing its connections.

        A view may remember what it learns about the root's layout until the
        run ends (the local backend: directories checked and made once); the
        backend itself where there is nothing to remember.
        """
        return self

    def local_path(self, key: str) -> Path | None:
        """The regular file behind ``key`` on this machine, when there is one.

        Lets a copy read a local object in place instead of streaming it; only
        the local backend has such files, with its own path checks applied.
        """
        try:
            self.check_key(key)
        except InvalidKey:
            return None
        return self._local_path(key)

    def clean_leftovers(self, *, older_than: timedelta | None = None) -> int:
        """Remove what writes killed midway left in this root; return how many were removed.

        Only leftovers no live writer can own are removed: older than
        ``older_than`` (default: the backend's ``leftover_age`` option), and on
        local disk also not locked by a live process. Objects are never touched.
        """
        if older_than is not None and older_than < timedelta(0):
            raise ValueError(f"older_than must not be negative, got {older_than}")
        return self._clean_leftovers(older_than)

    # -- the backend's own operations, called with checked arguments -----------

    @abstractmethod
    def _put_file(self, path: Path, put: FilePut) -> ObjectStat: ...

    def _put_sealed(self, path: Path, sealed: FileSeal, put: FilePut) -> ObjectStat:
        # A backend with no cheaper way proves the file the usual way, by hashing it.
        return self._put_file(path, put)

    @abstractmethod
    def _put_bytes(self, data: bytes, put: PutRequest) -> ObjectStat: ...

    @abstractmethod
    def _delete(self, key: str) -> None: ...

    @abstractmethod
    def _stat(self, key: str) -> ObjectStat | None: ...

    @abstractmethod
    def _list(self, prefix: str) -> Iterator[ObjectStat]: ...

    @abstractmethod
    def _open_read(self, key: str) -> AbstractContextManager[BinaryIO]: ...

    @abstractmethod
    def _get_file(self, key: str, dest: Path) -> ObjectStat: ...

    @abstractmethod
    def _get_bytes(self, key: str, *, max_size: int) -> tuple[bytes, ObjectStat]: ...

    def _copy_within(
        self, source: Backend, source_key: str, key: str, *, if_absent: bool
    ) -> ObjectStat | None:
        return None

    def _local_path(self, key: str) -> Path | None:
        return None

    def _clean_leftovers(self, older_than: timedelta | None) -> int:
        return 0  # a backend whose interrupted writes leave nothing behind

    def close(self) -> None:
        """Release connections; the backend is unusable afterwards."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


def roots_overlap(first: Backend, second: Backend) -> bool:
    """Whether one root is the other or lies inside it (``file:///a`` and ``file:///a/b``)."""
    a, b = first.location, second.location
    return a[: len(b)] == b or b[: len(a)] == a
