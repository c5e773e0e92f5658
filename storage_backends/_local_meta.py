"""What the local backend keeps beside each file: its metadata and its key locks.

Checksums, metadata and a per-write version id ride along as one extended
attribute on the file itself, so they move atomically with the rename. Locks
are ``flock`` on one of ``LOCK_STRIPES`` files in a hidden directory, picked
by a stable hash of the key (see ``local.py`` for the rule they serve).
"""

from __future__ import annotations

import fcntl
import json
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage_backends._streams import make_dirs
from storage_backends.base import ObjectStat

LOCK_DIR = ".track-archive-locks"
#: Lock files per root: enough that two busy keys rarely share one, few enough to stay tidy.
LOCK_STRIPES = 64
XATTR_NAME = "user.track-archive"


@contextmanager
def key_lock(root: Path, key: str) -> Iterator[None]:
    """Hold the key's lock (shared with the few keys hashing to the same stripe)."""
    # crc32, not hash(): every process must pick the same file for a key.
    lock = root / LOCK_DIR / f"{zlib.crc32(key.encode()) % LOCK_STRIPES:02x}"
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(lock, flags, 0o644)
    except FileNotFoundError:
        make_dirs(lock.parent, fsync=False)  # locks need no durability
        fd = os.open(lock, flags, 0o644)
    try:
        # Each open is its own open file description, so threads of one
        # process exclude each other as well as other processes.
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


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


def read_attrs(target: int | Path) -> dict[str, Any] | None:
    """The stored attribute of a file (descriptor or path, not following links)."""
    try:
        if isinstance(target, int):
            raw = os.getxattr(target, XATTR_NAME)
        else:
            raw = os.getxattr(target, XATTR_NAME, follow_symlinks=False)
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
