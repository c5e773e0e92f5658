"""The local backend's reads: listings in the services' key order, copies checked on the way out.

Reads take no lock: every write lands by a link or a rename, so a reader holds
either the old object or the new one, whole. What is read is checked against
the size and CRC32C stored with the object, as S3 and GCS check theirs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from storage_backends._copy import copy_hashed, file_chunks
from storage_backends._local_meta import read_attrs, stat_of
from storage_backends._streams import fsync_dir, make_dirs, temp_path_for
from storage_backends.base import ObjectStat
from storage_backends.errors import IntegrityError, StorageError
from storage_backends.keys import INTERNAL_PREFIX

#: Turns an ``OSError`` met at a key during an action into the backend's own error.
ErrorFor = Callable[[OSError, str, str], StorageError]


def walk(directory: Path, key_dir: str, name_start: str, error: ErrorFor) -> Iterator[ObjectStat]:
    """Yield the files below ``directory`` whose names start with ``name_start``, in key order.

    ``key_dir`` is the key of ``directory`` itself. Symlinks and every name with
    the reserved prefix (temp files, the work directory) are skipped.
    """
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise error(exc, key_dir, "list") from exc
    ordered: list[tuple[str, os.DirEntry[str]]] = []
    for entry in entries:
        if entry.name.startswith(INTERNAL_PREFIX) or not entry.name.startswith(name_start):
            continue
        if entry.is_symlink():
            continue
        # Sorting directories as "name/" keeps the output in S3/GCS key order.
        ordered.append((entry.name + "/" if entry.is_dir() else entry.name, entry))
    ordered.sort(key=lambda item: item[0])
    for _, entry in ordered:
        key = f"{key_dir}/{entry.name}" if key_dir else entry.name
        if entry.is_dir(follow_symlinks=False):
            yield from walk(Path(entry.path), key, "", error)
        elif entry.is_file(follow_symlinks=False):
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # deleted while listing
                continue
            # The entry's own str path: a Path per listed object costs more than the call.
            yield stat_of(key, st, read_attrs(entry.path))


def copy_out(source: BinaryIO, stat: ObjectStat, dest: Path, *, fsync: bool, backend: str) -> None:
    """Copy the open object ``source`` (described by ``stat``) to ``dest`` via a temp file.

    ``dest`` appears only once the bytes read match the stored size and CRC32C.
    """
    make_dirs(dest.parent, fsync=fsync)
    tmp = temp_path_for(dest)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            # SHA-256 is not recomputed: the stored CRC32C is what a read checks,
            # as for S3 and GCS.
            written = copy_hashed(file_chunks(source), fd, sha256=False, start_writeback=fsync)
            check_read(stat, written.size, written.crc32c, backend=backend)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
        if fsync:
            fsync_dir(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)


def check_read(stat: ObjectStat, size: int, crc32c: str, *, backend: str) -> None:
    """Raise ``IntegrityError`` unless ``size`` and ``crc32c`` read match what ``stat`` stored."""
    if size != stat.size or (stat.crc32c is not None and crc32c != stat.crc32c):
        raise IntegrityError(
            "bytes read do not match the checksum stored with the object",
            backend=backend,
            key=stat.key,
        )
