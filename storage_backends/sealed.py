"""Proof that a local file is unchanged since its checksums were computed, without reading it.

A writer that hashed the very bytes it wrote (the download engine) knows the
file's checksums; reading and hashing it all again to store it costs as much
as computing them did. ``FileSeal`` lets the store step trust them instead, as
long as the file has not changed since: it records the file's identity (device,
inode), size, modification time and inode change time at the moment of sealing.

Sealing also moves the modification time one nanosecond back from what the last
write left. Any later write through the file system sets it to the clock's
present, so it cannot come back to the sealed value, even within one tick of the
coarse clock file systems stamp times with (which alone could leave a write
invisible in both times). A truncation or extension changes the size, a
replacement the inode. ``FileSeal.holds`` compares a fresh ``stat`` with the
record; a file whose seal does not hold is hashed again or refused, never stored
on trust.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from storage_backends.checksums import CHUNK_SIZE, Hasher


@dataclass(frozen=True, slots=True)
class FileSeal:
    """The identity, size and times of a sealed file (see the module docstring)."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def apply(cls, path: Path) -> FileSeal:
        """Seal the file at ``path`` now: its writer has finished and hashed every byte."""
        before = os.stat(path, follow_symlinks=False)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 1), follow_symlinks=False)
        return cls.of(os.stat(path, follow_symlinks=False))

    @classmethod
    def of(cls, st: os.stat_result) -> FileSeal:
        """The record of a ``stat`` result."""
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def holds(self, st: os.stat_result) -> bool:
        """Whether ``st`` (a fresh ``stat`` of the file) shows it exactly as sealed."""
        return FileSeal.of(st) == self

    def holds_for(self, path: Path) -> bool:
        """Whether the file at ``path`` is still exactly as sealed (``False`` if it is gone)."""
        try:
            return self.holds(os.stat(path, follow_symlinks=False))
        except OSError:
            return False


def reseal_if_same(path: Path, *, size: int, crc32c: str, sha256: str) -> FileSeal | None:
    """Seal ``path``, read it whole, and return the seal if its bytes have these checksums.

    For a file whose writer is gone (a run resumed after a crash): its bytes are
    proved by reading them once more, and the seal taken before that read makes
    any change during or after it visible. ``None`` when they differ, the file
    changed while being read, or it cannot be read.
    """
    try:
        seal = FileSeal.apply(path)
        hasher = Hasher()
        with open(path, "rb", buffering=0) as file:
            while chunk := file.read(CHUNK_SIZE):
                hasher.update(chunk)
    except OSError:
        return None
    same = (hasher.size, hasher.crc32c, hasher.sha256) == (size, crc32c, sha256)
    return seal if same and seal.holds_for(path) else None
