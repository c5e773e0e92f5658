"""What the local backend keeps beside each file: its metadata, and how it locks a key.

Checksums, metadata and a per-write version id ride along as one extended
attribute on the file itself, so they move atomically with the rename.

A key's lock is an ``flock`` on the directory that holds the key: it creates no
file, so the archive root holds nothing but objects. Filesystems that cannot
lock a directory (NFS emulates ``flock`` with byte-range locks, which need a
file open for writing) use one of ``LOCK_STRIPES`` lock files in the root's
work directory instead, picked by a stable hash of the key. See ``local.py``
for the rule the locks serve.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import itertools
import json
import os
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage_backends._streams import make_dirs
from storage_backends.base import ObjectStat

#: Lock files per root where directories cannot be locked: enough that two busy keys rarely
#: share one, few enough to stay tidy.
LOCK_STRIPES = 64
XATTR_NAME = "user.track-archive"
#: ``flock`` errors on a directory meaning "not lockable here" rather than a real failure.
_NO_DIRECTORY_LOCKS = frozenset({errno.EBADF, errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP})


@contextmanager
def key_lock(directory: Path, work_dir: Path, key: str) -> Iterator[None]:
    """Hold the lock of ``key``, whose object lives in ``directory`` (which must exist).

    Every key in one directory shares the lock; creates take none, so only
    replacing writes and deletes in the same directory ever wait for each other.
    """
    # Each open is its own open file description, so threads of one process
    # exclude each other as well as other processes.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in _NO_DIRECTORY_LOCKS:
            raise
        fd = _lock_stripe(work_dir, key)
    try:
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _lock_stripe(work_dir: Path, key: str) -> int:
    """Open and lock the key's lock file in the work directory; return its descriptor."""
    # crc32, not hash(): every process must pick the same file for a key.
    lock = work_dir / "locks" / f"{zlib.crc32(key.encode()) % LOCK_STRIPES:02x}"
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(lock, flags, 0o644)
    except FileNotFoundError:
        make_dirs(lock.parent, fsync=False)  # locks need no durability
        fd = os.open(lock, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Versions:
    """Version ids for this process: a random prefix drawn once, then a counter.

    Unique like ``uuid4().hex`` (32 hex digits, 64 random bits per process)
    without asking the kernel for randomness on every write.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        # next() on itertools.count is atomic under the GIL: no lock needed.
        return f"{self._prefix}{next(self._counter):016x}"


_versions = _Versions()


def _new_versions_after_fork() -> None:
    # A child must never hand out its parent's ids.
    global _versions
    _versions = _Versions()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_versions_after_fork)


def new_version() -> str:
    """A fresh id for one write of an object (compare-and-swap tells writes apart by it)."""
    return _versions.next()


def stat_of(key: str, st: os.stat_result, attrs: dict[str, Any] | None) -> ObjectStat:
    """The object's stat: trusted checksums only while size and mtime still match them."""
    valid = (
        attrs is not None
        and attrs.get("size") == st.st_size
        and attrs.get("mtime_ns") == st.st_mtime_ns
    )
    if valid and attrs is not None:
        return ObjectStat(
            key=key,
            size=st.st_size,
            crc32c=attrs.get("crc32c"),
            sha256=attrs.get("sha256"),
            version=str(attrs.get("version")),
            updated=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
            metadata=dict(attrs.get("metadata") or {}),
        )
    # A file placed by hand, or changed in place: no trusted checksums.
    return ObjectStat(
        key=key,
        size=st.st_size,
        version=f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}",
        updated=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
    )


#: Bytes asked for in one call: every attribute we write fits (about 250 bytes).
_XATTR_BUFFER = 4096
_XATTR_NAME_BYTES = XATTR_NAME.encode()


def _load_libc_getxattr() -> tuple[Any, Any] | None:
    # os.getxattr asks with a 128-byte buffer first, and our attribute is
    # longer: two system calls for every object listed or read. libc's own
    # calls take a buffer large enough for one. Linux only; elsewhere, os.getxattr.
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        by_path, by_fd = libc.lgetxattr, libc.fgetxattr
    except (OSError, AttributeError):
        return None
    by_path.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    by_fd.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    by_path.restype = by_fd.restype = ctypes.c_ssize_t
    return by_path, by_fd


_libc_getxattr = _load_libc_getxattr()


def _getxattr(target: int | str | Path) -> bytes:
    """The raw attribute, in one system call when it fits ``_XATTR_BUFFER``."""
    if _libc_getxattr is not None:
        buffer = ctypes.create_string_buffer(_XATTR_BUFFER)
        if isinstance(target, int):
            size = _libc_getxattr[1](target, _XATTR_NAME_BYTES, buffer, _XATTR_BUFFER)
        else:
            size = _libc_getxattr[0](os.fsencode(target), _XATTR_NAME_BYTES, buffer, _XATTR_BUFFER)
        if size >= 0:
            return buffer.raw[:size]
        number = ctypes.get_errno()
        if number != errno.ERANGE:  # longer than the buffer: os.getxattr sizes it
            raise OSError(number, os.strerror(number), str(target))
    if isinstance(target, int):
        return os.getxattr(target, XATTR_NAME)
    return os.getxattr(target, XATTR_NAME, follow_symlinks=False)


def read_attrs(target: int | str | Path) -> dict[str, Any] | None:
    """The stored attribute of a file (descriptor or path, not following links)."""
    try:
        raw = _getxattr(target)
    except OSError:  # absent, or a filesystem without user xattrs
        return None
    try:
        attrs = json.loads(raw)
    except ValueError:
        return None
    return attrs if isinstance(attrs, dict) else None


def write_attrs(fd: int, attrs: dict[str, Any]) -> bool:
    """Store the attribute; ``False`` where the filesystem has no user xattrs."""
    # Without xattr support objects simply report no checksums.
    try:
        os.setxattr(fd, XATTR_NAME, json.dumps(attrs, sort_keys=True).encode())
    except OSError:
        return False
    return True
