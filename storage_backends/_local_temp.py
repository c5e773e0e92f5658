"""The local backend's temp files: nameless where the filesystem allows, else in one work directory.

A write's bytes go to a temp file that becomes the object only once it is
finished and checked. Where the filesystem offers ``O_TMPFILE`` (ext4, XFS,
Btrfs, tmpfs) the temp file has no name at all: it is created in the
destination's directory, and a create-only write names it with one ``link``
through ``/proc/self/fd``, which fails when the name is taken. A process killed
mid-write leaves nothing behind: the kernel frees a nameless file with its last
descriptor. Such a file is locked only when it is about to get a name in the
work directory (below): no cleaner can see it before, so a create-only write
costs no lock call. The ``/proc/self/fd`` directory is opened once per process.

A replacing write needs a name to rename onto the destination, so the finished
file is linked into the root's work directory just before the rename (both
under the key's lock). Where there is no ``O_TMPFILE`` (NFS, SMB, most FUSE
filesystems, non-Linux systems) the temp file is named in the work directory
from the start.

Every named temp file therefore lives in ``<root>/.track-archive-work``, and its
writer holds an ``flock`` on it until it is renamed or removed: a named file
nobody locks was left by a dead process, and :meth:`TempFiles.clean` removes
it. The work directory is removed when a run closes the root or cleans it,
if it is empty then, so a root that no run is writing to holds only objects.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat as stat_mod
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage_backends._copy import Digests, copy_hashed
from storage_backends._local_meta import new_version, stat_of, write_attrs
from storage_backends._streams import TEMP_PREFIX, make_dirs
from storage_backends.base import ObjectStat
from storage_backends.keys import INTERNAL_PREFIX

#: The root's one directory of coordination files; keys can never name it.
WORK_DIR = f"{INTERNAL_PREFIX}-work"
#: ``open(O_TMPFILE)`` errors meaning "not on this filesystem" (see open(2)).
_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})
#: ``link`` errors meaning "this filesystem has no hard links" rather than a real failure.
NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})
#: Tries to use the work directory while concurrent writers create and remove it.
_WORK_DIR_TRIES = 8
#: Absent outside Linux: every temp file is then named.
_O_TMPFILE: int | None = getattr(os, "O_TMPFILE", None)
_PROC_FD = Path("/proc/self/fd")


@dataclass(slots=True)
class TempFile:
    """An open temp file; ``path`` is its name, ``None`` while it has none."""

    fd: int
    #: The destination's directory (where a nameless file was made).
    directory: Path
    path: Path | None = None


class TempFiles:
    """Creates, fills, commits and cleans the temp files of one archive root."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._work = root / WORK_DIR
        self._root_device = os.stat(root).st_dev
        #: Whether nameless files can be made and named here; ``None`` until the first write tells.
        self._nameless: bool | None = None
        if _O_TMPFILE is None or not _PROC_FD.is_dir():
            self._nameless = False

    @property
    def work_dir(self) -> Path:
        """The root's directory of coordination files (present only while in use)."""
        return self._work

    def create(self, directory: Path) -> TempFile:
        """An empty temp file for a write into ``directory``, locked by this process."""
        if self._nameless is not False and _O_TMPFILE is not None:
            try:
                fd = self._open_nameless(directory)
            except OSError as exc:
                if exc.errno not in _NO_TMPFILE:
                    raise
                self._nameless = False
            else:
                try:
                    if self._nameless is None:
                        self._nameless = self._can_name(directory)
                except BaseException:
                    os.close(fd)
                    raise
                if self._nameless:
                    return TempFile(fd, directory)
                os.close(fd)
        return self._create_named(directory)

    @staticmethod
    def _open_nameless(directory: Path) -> int:
        assert _O_TMPFILE is not None
        # Not locked yet: nothing can see a file without a name (see _link_into_work).
        return os.open(directory, _O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o644)

    def _can_name(self, directory: Path) -> bool:
        """Whether a nameless file can be given a name here (some filesystems have no hard links).

        Tried once per root, on an empty file of its own: a file that was named
        once cannot lose its name and be linked again.
        """
        probe = self._open_nameless(directory)
        try:
            os.unlink(self._link_into_work(probe, directory))
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            return False
        finally:
            os.close(probe)
        return True

    def _home(self, directory: Path) -> Path:
        # A directory mounted from another filesystem inside the root cannot
        # rename from the work directory: its temp files stay beside their objects.
        if directory != self._root and os.stat(directory).st_dev != self._root_device:
            return directory
        return self._work

    def _create_named(self, directory: Path) -> TempFile:
        home = self._home(directory)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        for attempt in range(_WORK_DIR_TRIES):
            path = home / f"{TEMP_PREFIX}{secrets.token_hex(12)}"
            try:
                fd = os.open(path, flags, 0o644)
            except FileNotFoundError:
                if attempt == _WORK_DIR_TRIES - 1:
                    raise
                make_dirs(home, fsync=False)  # temp files need no durable directory
                continue
            _lock(fd)
            return TempFile(fd, directory, path)
        raise AssertionError("unreachable")

    def _link_into_work(self, fd: int, directory: Path) -> Path:
        home = self._home(directory)
        _lock(fd)  # before it has a name there, so no cleaner ever sees it unlocked
        for attempt in range(_WORK_DIR_TRIES):
            path = home / f"{TEMP_PREFIX}{secrets.token_hex(12)}"
            try:
                _link_open_file(fd, path)
            except FileNotFoundError:
                if attempt == _WORK_DIR_TRIES - 1:
                    raise
                make_dirs(home, fsync=False)
                continue
            return path
        raise AssertionError("unreachable")

    def write_object(
        self,
        key: str,
        directory: Path,
        chunks: Iterable[bytes],
        attrs: dict[str, Any],
        *,
        size: int,
        fsync: bool,
    ) -> tuple[TempFile, Digests, ObjectStat]:
        """Write ``key``'s finished, hashed temp file in ``directory``; return it (still open).

        ``attrs`` (metadata, content type) are stored with the file's checksums,
        size and a new version id; the stat returned is the one the key will
        have. The caller commits or discards the file; until then its lock tells
        :meth:`clean` that it is in use.
        """
        temp = self.create(directory)
        try:
            written = copy_hashed(
                chunks, temp.fd, sha256=True, start_writeback=fsync, size_hint=size
            )
            st = os.fstat(temp.fd)
            stored = {
                **attrs,
                "crc32c": written.crc32c,
                "sha256": written.sha256,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "version": new_version(),
            }
            has_attrs = write_attrs(temp.fd, stored)
            if fsync:
                os.fsync(temp.fd)
        except BaseException:
            self.discard(temp)
            raise
        # Link and rename keep the inode, its mtime and its xattr: this is the
        # stat the key will have, without reading it back.
        return temp, written, stat_of(key, st, stored if has_attrs else None)

    def link(self, temp: TempFile, dest: Path) -> None:
        """Give the finished file the name ``dest``; ``FileExistsError`` when it is taken."""
        if temp.path is not None:
            os.link(temp.path, dest, follow_symlinks=False)
        else:
            _link_open_file(temp.fd, dest)

    def replace(self, temp: TempFile, dest: Path) -> None:
        """Rename the finished file onto ``dest``, replacing what is there."""
        if temp.path is None:
            temp.path = self._link_into_work(temp.fd, temp.directory)
        os.replace(temp.path, dest)
        temp.path = None  # the name is the object's now

    def discard(self, temp: TempFile) -> None:
        """Close the temp file and remove its own name, if it still has one."""
        try:
            if temp.path is not None:
                with suppress(FileNotFoundError):
                    os.unlink(temp.path)
                temp.path = None
        finally:
            os.close(temp.fd)  # releases the lock

    def tidy(self) -> None:
        """Remove the work directory if it is empty (when a run closes the root)."""
        # Not after every write: concurrent writers would keep removing the
        # directory from under each other. Fails while another writer has a
        # file there, or has just removed it: both fine.
        with suppress(OSError):
            os.rmdir(self._work)

    def clean(self, older_than: float) -> int:
        """Remove named temp files no live process holds and older than ``older_than`` seconds."""
        try:
            entries = list(os.scandir(self._work))
        except FileNotFoundError:
            return 0
        removed = 0
        cutoff = time.time() - older_than
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX) and _remove_if_abandoned(
                Path(entry.path), cutoff
            ):
                removed += 1
        self.tidy()
        return removed


_proc_fd_dir: int | None = None
_proc_fd_lock = threading.Lock()


def _proc_fd() -> int:
    """This process's descriptor of ``/proc/self/fd``, opened on first use."""
    global _proc_fd_dir
    with _proc_fd_lock:
        if _proc_fd_dir is None:
            _proc_fd_dir = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return _proc_fd_dir


def _forget_proc_fd_after_fork() -> None:
    # The inherited descriptor still shows the parent's /proc/self: the child opens its own.
    global _proc_fd_dir, _proc_fd_lock
    if _proc_fd_dir is not None:
        with suppress(OSError):
            os.close(_proc_fd_dir)
    _proc_fd_dir = None
    _proc_fd_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_proc_fd_after_fork)


def _link_open_file(fd: int, dest: Path) -> None:
    """Give the open file ``fd`` the name ``dest`` (``FileExistsError`` when it is taken)."""
    # Without a directory descriptor os.link calls link(2), which would link the
    # /proc symlink itself (EXDEV); with one it calls linkat with AT_SYMLINK_FOLLOW,
    # which links the open file. One descriptor per process, kept open: two
    # calls fewer per write than opening it each time.
    os.link(str(fd), dest, src_dir_fd=_proc_fd(), follow_symlinks=True)


def _lock(fd: int) -> None:
    # Without locks on this filesystem a temp file is told from a leftover by age alone.
    with suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _remove_if_abandoned(path: Path, cutoff: float) -> bool:
    """Unlink ``path`` if no process holds its lock and it was last written before ``cutoff``."""
    try:
        # Read-write: an exclusive lock on a network filesystem needs a writable descriptor.
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return False  # its writer renamed or removed it meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        except OSError:
            pass  # no locks here: age decides alone
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode) or st.st_mtime > cutoff:
            return False
        try:
            if os.stat(path, follow_symlinks=False).st_ino != st.st_ino:
                return False  # the name now belongs to another file
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True
    finally:
        os.close(fd)
