"""Small I/O helpers shared by the backends: translated read streams, atomic files."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from storage_backends.base import ObjectStat
from storage_backends.checksums import CHUNK_SIZE, Hasher
from storage_backends.errors import IntegrityError, StorageError

if TYPE_CHECKING:
    from typing_extensions import Buffer

#: Temp files start with this so listings can skip them and keys cannot clash.
TEMP_PREFIX = ".track-archive-tmp-"


class TranslatingReader(io.RawIOBase):
    """A raw stream over an SDK body whose errors become our ``StorageError`` tree."""

    def __init__(
        self,
        read: Callable[[int], bytes],
        close: Callable[[], None],
        translate: Callable[[Exception], StorageError],
    ) -> None:
        super().__init__()
        self._read = read
        self._close = close
        self._translate = translate

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer)
        try:
            data = self._read(len(view))
        except StorageError:
            raise
        except Exception as exc:
            raise self._translate(exc) from exc
        count = len(data)
        view[:count] = data
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._close()
            finally:
                super().close()


def buffered(raw: TranslatingReader, buffer_size: int = 1024 * 1024) -> BinaryIO:
    """Wrap a ``TranslatingReader`` as an ordinary buffered binary file."""
    return io.BufferedReader(raw, buffer_size)


def temp_path_for(dest: Path) -> Path:
    """A fresh temp file name beside ``dest`` (same directory, so rename is atomic).

    The name does not grow with ``dest``'s: any name that fits a directory has
    a temp name that fits too (43 bytes).
    """
    return dest.parent / f"{TEMP_PREFIX}{secrets.token_hex(12)}"


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path, *, fsync: bool = True, known: Container[str] = ()) -> list[Path]:
    """Create ``directory`` and any missing parents; return the ones created.

    With ``fsync`` each new directory's entry is made durable in its parent:
    fsyncing a file and its own directory does not persist a directory that was
    created just before, and a crash could then lose the whole subtree.
    Directories in ``known`` are taken to exist without asking the kernel.
    """
    missing: list[Path] = []
    current = directory
    while str(current) not in known and not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created: list[Path] = []
    for new in reversed(missing):
        try:
            new.mkdir()
        except FileExistsError:
            continue  # made by a concurrent writer, who makes it durable
        created.append(new)
        if fsync:
            fsync_dir(new.parent)
    return created


@contextmanager
def atomic_output(dest: Path, *, fsync: bool = True) -> Iterator[BinaryIO]:
    """Write to a temp file beside ``dest``; rename onto ``dest`` only if the body succeeds.

    On any failure the temp file is removed, so no half-written file remains.
    """
    make_dirs(dest.parent, fsync=fsync)
    tmp = temp_path_for(dest)
    try:
        with open(tmp, "xb") as out:
            yield out
            out.flush()
            if fsync:
                os.fsync(out.fileno())
        os.replace(tmp, dest)
        if fsync:
            fsync_dir(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)


class CrcReader:
    """A file wrapper hashing the bytes an SDK reads, pass by pass.

    SDKs may read a body more than once (to sign it, then on a retry); a seek
    back to 0 starts a new pass, so ``hasher`` always describes the last pass,
    the one the service received. With ``sha256`` the pass's SHA-256 is kept
    too: the services check only the CRC32C, so a file whose bytes keep the
    CRC32C but not the SHA-256 is caught only here.
    """

    def __init__(self, file: BinaryIO, *, sha256: bool = False) -> None:
        self._file = file
        self._sha256 = sha256
        self.hasher = Hasher(sha256=sha256)
        #: False once a pass skipped or re-read bytes: ``hasher`` then describes no whole pass.
        self.whole_pass = True

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.hasher.update(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self._file.seek(offset, whence)
        if position == 0:
            self.hasher = Hasher(sha256=self._sha256)
            self.whole_pass = True
        elif position != self.hasher.size:
            self.whole_pass = False
        return position

    def tell(self) -> int:
        return self._file.tell()


def stream_to_file(
    body: BinaryIO, dest: Path, stat: ObjectStat, *, url: str, fsync: bool = True
) -> None:
    """Copy an SDK body to ``dest`` atomically, checking size and CRC32C (or SHA-256).

    On any failure, including a checksum mismatch, ``dest`` is left untouched
    and no temp file remains.
    """
    hasher = Hasher(sha256=stat.crc32c is None and stat.sha256 is not None)
    try:
        with atomic_output(dest, fsync=fsync) as out:
            while chunk := body.read(CHUNK_SIZE):
                hasher.update(chunk)
                out.write(chunk)
            if hasher.size != stat.size:
                raise IntegrityError(
                    f"read {hasher.size} bytes, object has {stat.size}", backend=url, key=stat.key
                )
            if stat.crc32c is not None and hasher.crc32c != stat.crc32c:
                raise IntegrityError(
                    f"bytes read have CRC32C {hasher.crc32c}, object has {stat.crc32c}",
                    backend=url,
                    key=stat.key,
                )
            if stat.crc32c is None and stat.sha256 is not None and hasher.sha256 != stat.sha256:
                raise IntegrityError(
                    "bytes read do not match the object's sha256 metadata",
                    backend=url,
                    key=stat.key,
                )
    finally:
        body.close()
