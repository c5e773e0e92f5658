"""Local-disk backend: a directory is the archive root, keys are relative paths.

Every write goes to a temp file, is checked, fsynced and then linked or
renamed into place, so a reader never sees a partial object. Temp files have
no name where the filesystem allows it, so a killed process leaves nothing
behind; elsewhere they are named in the root's one work directory, where
``clean_leftovers`` finds what a dead process left (see ``_local_temp``).
Checksums, metadata and a per-write version id ride along as one extended
attribute on the file itself (so they move atomically with the rename).

Concurrency rule, between threads and between processes sharing a root:

* a create-only write needs no lock: linking the finished temp file to its
  name fails if anything already holds the name, which is atomic in the kernel;
* every write that may replace an object (unconditional or compare-and-swap)
  and every delete holds the key's lock from its check to its rename, so a
  compare-and-swap cannot overwrite a write that landed after its check.

A sealed file (``put_file(..., sealed=...)``) on the same file system is linked
at the key, not copied (``_local_link``), create-only like any other new object.

A key's lock is an ``flock`` on the directory holding it, which adds no file
to the root (see ``_local_meta``): writes in different directories never wait
for each other. Listings skip every name with the reserved prefix, so the work
directory is never listed or synced.
"""

from __future__ import annotations

import copy
import errno
import os
import stat as stat_mod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

from storage_backends._copy import COPY_CHUNK_SIZE, Digests, RawReader, advise_sequential
from storage_backends._copy import file_chunks as _file_chunks
from storage_backends._dirs import KnownDirs
from storage_backends._local_link import link_sealed
from storage_backends._local_meta import key_lock, read_attrs, stat_of
from storage_backends._local_read import check_read, copy_out, walk
from storage_backends._local_temp import NO_HARD_LINKS, WORK_DIR, TempFile, TempFiles
from storage_backends._streams import TEMP_PREFIX, fsync_dir
from storage_backends.base import Backend, FilePut, ObjectStat, PutRequest
from storage_backends.checksums import hash_bytes
from storage_backends.errors import (
    BackendConfigError,
    IntegrityError,
    InvalidKey,
    ObjectNotFound,
    PermissionDenied,
    PreconditionFailed,
    StorageError,
)
from storage_backends.keys import INTERNAL_PREFIX
from storage_backends.options import LocalOptions
from storage_backends.sealed import FileSeal

assert TEMP_PREFIX.startswith(INTERNAL_PREFIX) and WORK_DIR.startswith(INTERNAL_PREFIX)
#: ``os.link`` errors after which a sealed file is copied instead (another file system too).
_COPY_INSTEAD = NO_HARD_LINKS | {errno.EXDEV, errno.EMLINK}


class LocalBackend(Backend):
    """Objects as files under one root directory."""

    scheme = "file"

    def __init__(self, root: Path, options: LocalOptions | None = None) -> None:
        self._options = options or LocalOptions()
        try:
            root = root.expanduser().resolve()
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendConfigError(f"cannot use {root} as archive root: {exc.strerror}") from exc
        self._root = root
        # Made once: every key check names the backend, several times per object.
        self._url = root.as_uri()
        self._temps = TempFiles(root)
        self._dirs = KnownDirs(root, remember=False)

    def run_view(self) -> LocalBackend:
        """This root for one run: directories are checked and made once (see ``_dirs``)."""
        view = copy.copy(self)
        view._dirs = KnownDirs(self._root, remember=True)
        return view

    @property
    def url(self) -> str:
        return self._url

    @property
    def root(self) -> Path:
        """The archive root directory."""
        return self._root

    # -- paths and errors ------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self._resolve(key)[0]

    def _resolve(self, key: str) -> tuple[Path, int | None]:
        """The key's path and the ``lstat`` mode of what is there (``None``: nothing)."""
        parts = key.split("/")
        safe, mode = self._dirs.walk(parts)
        if not safe:
            raise InvalidKey(
                "key resolves through a symlink or outside the archive root",
                backend=self.url,
                key=key,
            )
        return self._root.joinpath(*parts), mode

    def _new_path(self, key: str) -> Path:
        """The path of a key about to be created: only its directories are checked.

        Whether something already holds the name is left to the create-only
        link, which decides atomically anyway: an ``lstat`` of the name first
        would only make the rare conflict cheaper for one call on every write.
        """
        parts = key.split("/")
        if not self._dirs.walk(parts, last=False)[0]:
            raise InvalidKey(
                "key resolves through a symlink or outside the archive root",
                backend=self.url,
                key=key,
            )
        return self._root.joinpath(*parts)

    def _no_symlinks(self, parts: list[str]) -> bool:
        return self._dirs.walk(parts)[0]

    def _local_path(self, key: str) -> Path | None:
        try:
            path, mode = self._resolve(key)
        except (OSError, InvalidKey):
            return None
        return path if mode is not None and stat_mod.S_ISREG(mode) else None

    def _error(self, exc: OSError, key: str, action: str) -> StorageError:
        message = f"{action} failed: {exc.strerror or exc}"
        if isinstance(exc, FileNotFoundError | IsADirectoryError):
            return ObjectNotFound(f"{action}: no such object", backend=self.url, key=key)
        if isinstance(exc, PermissionError):
            return PermissionDenied(message, backend=self.url, key=key)
        return StorageError(message, backend=self.url, key=key)

    def _clean_leftovers(self, older_than: timedelta | None) -> int:
        """Remove named temp files of dead writers from the work directory."""
        age = self._options.leftover_age if older_than is None else older_than.total_seconds()
        try:
            return self._temps.clean(age)
        except OSError as exc:
            raise self._error(exc, WORK_DIR, "clean_leftovers") from exc

    # -- writes ------------------------------------------------------------------

    def _write_temp(
        self, key: str, dest: Path, chunks: Iterable[bytes], attrs: dict[str, Any], size: int
    ) -> tuple[TempFile, Digests, ObjectStat]:
        """A finished temp file for ``dest``, made in its directory (see ``TempFiles.write_object``)."""
        self._dirs.ensure(dest.parent, fsync=self._options.fsync)
        return self._temps.write_object(
            key, dest.parent, chunks, attrs, size=size, fsync=self._options.fsync
        )

    def _lock(self, dest: Path, key: str) -> AbstractContextManager[None]:
        return key_lock(dest.parent, self._temps.work_dir, key)

    def _commit(
        self, temp: TempFile, dest: Path, key: str, *, if_absent: bool, if_version: str | None
    ) -> None:
        """Move a finished temp file to ``dest`` under the module's concurrency rule."""
        try:
            if if_absent:
                self._link_new(temp, dest, key)
            else:
                with self._lock(dest, key):
                    if if_version is not None and self._current_version(dest, key) != if_version:
                        raise PreconditionFailed(
                            "compare-and-swap write: the object changed since it was read",
                            backend=self.url,
                            key=key,
                        )
                    self._temps.replace(temp, dest)
            if self._options.fsync:
                fsync_dir(dest.parent)
        finally:
            self._temps.discard(temp)

    def _exists(self, key: str) -> PreconditionFailed:
        return PreconditionFailed(
            "create-only write: an object already exists", backend=self.url, key=key
        )

    def _link_new(self, temp: TempFile, dest: Path, key: str) -> None:
        try:
            self._temps.link(temp, dest)
            return
        except FileExistsError:
            raise self._exists(key) from None
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
        # No hard links here: check-then-rename under the key's lock instead,
        # which every replacing write also holds.
        with self._lock(dest, key):
            if os.path.lexists(dest):
                raise self._exists(key)
            self._temps.replace(temp, dest)

    def _current_version(self, path: Path, key: str) -> str | None:
        try:
            st = os.stat(path, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        return stat_of(key, st, read_attrs(path)).version

    def _put_file(self, path: Path, put: FilePut) -> ObjectStat:
        """Copy ``path`` to the key, recomputing both checksums on the way."""
        key = put.key
        dest = self._new_path(key) if put.if_absent else self._path(key)
        attrs = {"metadata": put.metadata, "content_type": put.content_type}
        # The caller's own file: its OSError is the caller's, not a storage error.
        source = RawReader.open(path)
        try:
            size = os.fstat(source.fileno()).st_size
            if size > COPY_CHUNK_SIZE:  # one read needs no readahead hint
                advise_sequential(source.fileno())
            try:
                temp, written, stat = self._write_temp(
                    key, dest, _file_chunks(source, size), attrs, size
                )
            finally:
                source.close()
            if (written.crc32c, written.sha256) != (put.crc32c, put.sha256):
                self._temps.discard(temp)
                raise IntegrityError(
                    f"file {path} does not match the checksums given "
                    f"(crc32c {written.crc32c} != {put.crc32c} or sha256 differs)",
                    backend=self.url,
                    key=key,
                )
            self._commit(temp, dest, key, if_absent=put.if_absent, if_version=None)
        except OSError as exc:
            raise self._error(exc, key, "put_file") from exc
        return stat

    def _put_sealed(self, path: Path, sealed: FileSeal, put: FilePut) -> ObjectStat:
        """Link the sealed file itself at the key; copy it where a link cannot be made."""
        dest = self._path(put.key)
        if not put.if_absent:
            # A replacing write takes the locked copy-and-rename path.
            return self._put_file(path, put)
        if os.path.lexists(dest):
            raise PreconditionFailed(
                "create-only write: an object already exists", backend=self.url, key=put.key
            )
        attrs = {
            "metadata": put.metadata,
            "content_type": put.content_type,
            "crc32c": put.crc32c,
            "sha256": put.sha256,
        }
        try:
            return link_sealed(
                path, dest, sealed, attrs, key=put.key, backend=self.url, fsync=self._options.fsync
            )
        except OSError as exc:
            if exc.errno in _COPY_INSTEAD:
                return self._put_file(path, put)
            raise self._error(exc, put.key, "put_file") from exc

    def _put_bytes(self, data: bytes, put: PutRequest) -> ObjectStat:
        """Write a small document atomically, optionally create-only or compare-and-swap."""
        dest = self._path(put.key)
        attrs = {"metadata": put.metadata, "content_type": put.content_type}
        try:
            temp, _, stat = self._write_temp(put.key, dest, [data], attrs, len(data))
            self._commit(temp, dest, put.key, if_absent=put.if_absent, if_version=put.if_version)
        except OSError as exc:
            raise self._error(exc, put.key, "put_bytes") from exc
        return stat

    def _delete(self, key: str) -> None:
        """Remove the file at ``key``."""
        path = self._path(key)
        try:
            with self._lock(path, key):
                if not stat_mod.S_ISREG(os.lstat(path).st_mode):
                    raise FileNotFoundError(path)
                path.unlink()
        except OSError as exc:
            raise self._error(exc, key, "delete") from exc

    # -- reads -------------------------------------------------------------------

    def _stat(self, key: str) -> ObjectStat | None:
        """Describe the file at ``key`` without reading it."""
        path = self._path(key)
        try:
            st = os.stat(path, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._error(exc, key, "stat") from exc
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        return stat_of(key, st, read_attrs(path))

    def _list(self, prefix: str) -> Iterator[ObjectStat]:
        """Yield files under ``prefix`` in key order, walking directories lazily."""
        directory, _, name_start = prefix.rpartition("/")
        start = self._root / directory if directory else self._root
        if directory and not self._no_symlinks(directory.split("/")):
            return
        yield from walk(start, directory, name_start, self._error)

    def _open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open the file for reading."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise self._error(exc, key, "open_read") from exc
        return cast(AbstractContextManager[BinaryIO], os.fdopen(fd, "rb"))

    def _get_file(self, key: str, dest: Path) -> ObjectStat:
        """Copy the object to ``dest`` via a temp file, checking size and stored CRC32C."""
        path = self._path(key)
        try:
            source = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb", buffering=0)
        except OSError as exc:
            raise self._error(exc, key, "get_file") from exc
        with source:
            stat = stat_of(key, os.fstat(source.fileno()), read_attrs(source.fileno()))
            advise_sequential(source.fileno())
            copy_out(source, stat, dest, fsync=self._options.fsync, backend=self.url)
        return stat

    def _get_bytes(self, key: str, *, max_size: int) -> tuple[bytes, ObjectStat]:
        """Read a small file whole."""
        path = self._path(key)
        try:
            # Straight from the descriptor: a buffered file object would add
            # an ioctl, two lseeks and an fstat to every manifest read.
            source = RawReader(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC))
        except OSError as exc:
            raise self._error(exc, key, "open_read") from exc
        try:
            st = os.fstat(source.fileno())
            stat = stat_of(key, st, read_attrs(source.fileno()))
            if st.st_size > max_size:
                raise StorageError(
                    f"object is {st.st_size} bytes, over the {max_size} limit",
                    backend=self.url,
                    key=key,
                )
            # Read to the real end: a file that grew is caught by check_read below.
            data = b"".join(_file_chunks(source, st.st_size))
        finally:
            source.close()
        crc, _ = hash_bytes(data)
        check_read(stat, len(data), crc, backend=self.url)
        return data, stat

    def close(self) -> None:
        """Remove the root's work directory if no writer is using it."""
        self._temps.tidy()
