"""The local backend's store of a sealed file: its own inode linked at the key, not a copy.

A verified download on the archive's file system already holds exactly the bytes
to archive, hashed as they were written (``sealed``). Copying them again would
read, hash and write every byte a second time; a hard link makes the same inode
the archived object. The rules of every other write still hold: the link is
create-only (``os.link`` fails if anything holds the name), the object carries
its checksums in its extended attribute, and the file and the new directory
entry are fsynced before the key is reported stored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from storage_backends._local_meta import new_version, stat_of, write_attrs
from storage_backends._streams import fsync_dir, make_dirs
from storage_backends.base import ObjectStat
from storage_backends.errors import IntegrityError, PreconditionFailed
from storage_backends.sealed import FileSeal


def link_sealed(
    path: Path,
    dest: Path,
    sealed: FileSeal,
    attrs: dict[str, Any],
    *,
    key: str,
    backend: str,
    fsync: bool,
) -> ObjectStat:
    """Link the sealed file ``path`` at ``dest`` (create-only) with ``attrs``; return its stat.

    ``attrs`` holds the checksums and metadata to keep. Raises ``IntegrityError``
    when the seal does not hold, ``PreconditionFailed`` when ``dest`` exists, and
    ``OSError`` (``EXDEV`` for another file system) when no link can be made.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        # Checked on the descriptor whose inode is linked: the bytes behind it are
        # the bytes hashed, unchanged since, so nothing needs to read them again.
        if not sealed.holds(st):
            raise IntegrityError(
                f"file {path} changed after its checksums were computed; not stored",
                backend=backend,
                key=key,
            )
        stored = {
            **attrs,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "version": new_version(),
        }
        has_attrs = write_attrs(fd, stored)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    make_dirs(dest.parent, fsync=fsync)
    try:
        os.link(path, dest, follow_symlinks=False)
    except FileExistsError:
        raise PreconditionFailed(
            "create-only write: an object already exists", backend=backend, key=key
        ) from None
    if fsync:
        fsync_dir(dest.parent)
    # A link keeps the inode's mtime and xattr: this is the stat the key now has.
    return stat_of(key, st, stored if has_attrs else None)
