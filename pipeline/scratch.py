"""Working directories that a killed process does not leave behind for good.

A Celery worker stages its downloads and copies, and a sync its streamed
copies, in the staging directory that every process with the same
configuration shares. Each such process works in a directory of its own there,
``.scratch-<purpose>-<random>``, and holds an ``flock`` on the ``lock`` file
inside it while it runs. The kernel drops that lock when the process ends,
however it ends (SIGKILL, the OOM killer, a power cut), so a scratch directory
whose lock can be taken belongs to nobody: the next process that opens a
scratch directory in the same place removes it, with whatever a killed
download or copy left in it. The journal's own staging files (``archive``,
``serve``) are never touched here: an interrupted run resumes from them.

A directory is removed only when its lock can be taken *and* nothing in it
changed for a minute, since a process that has just made its directory takes
the lock a moment later. Where the filesystem has no locks, nothing is
removed: a live process's directory could not be told from a dead one's.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import TracebackType

from .errors import TrackArchiveError

log = logging.getLogger(__name__)

PREFIX = ".scratch-"
LOCK_NAME = "lock"
#: Seconds a directory must have been left alone before it may be taken for abandoned.
MIN_AGE = 60.0


class ScratchError(TrackArchiveError):
    """A working directory for temporary files cannot be made."""


class ScratchDir:
    """A directory for this process's temporary files inside ``parent``, locked while open.

    ``parent`` ``None`` means the system's temporary directory. Opening one first
    removes the scratch directories in ``parent`` that dead processes left;
    closing it removes it with everything still in it.
    """

    def __init__(self, parent: Path | None, purpose: str) -> None:
        self.parent = parent if parent is not None else Path(tempfile.gettempdir())
        self.purpose = purpose
        self.path: Path | None = None
        self._lock_fd: int | None = None

    def open(self) -> Path:
        """Make the directory and take its lock; return its path."""
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
            sweep(self.parent)
            path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{self.purpose}-", dir=self.parent))
            fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ScratchError(
                f"cannot make a scratch directory in {self.parent}: {exc.strerror or exc}"
            ) from exc
        # Without locks on this filesystem no sweeper takes it for abandoned either.
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path, self._lock_fd = path, fd
        return path

    def close(self) -> None:
        """Remove the directory and everything in it, then let go of its lock."""
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Path:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def sweep(parent: Path, *, min_age: float = MIN_AGE) -> list[Path]:
    """Remove the scratch directories in ``parent`` whose process is gone; return them.

    Never raises: a directory that cannot be examined or removed is left as it is.
    """
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(PREFIX)]
    except OSError:
        return []
    cutoff = time.time() - min_age
    removed = []
    for entry in entries:
        path = Path(entry.path)
        if _remove_if_abandoned(path, cutoff):
            log.info("removed %s, left by a process that ended without cleaning up", path)
            removed.append(path)
    return removed


def _remove_if_abandoned(path: Path, cutoff: float) -> bool:
    try:
        if not path.is_dir() or path.is_symlink():
            return False
        # Read-write: an exclusive lock on a network filesystem needs a writable descriptor.
        fd: int | None = os.open(path / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = None  # its process died before making the lock file, or is making it now
    except OSError:
        return False
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a live process holds it, or there are no locks here
        # Held until the directory is gone, so that no other sweeper sees it as free.
        if os.stat(path, follow_symlinks=False).st_mtime > cutoff:
            return False
        shutil.rmtree(path, ignore_errors=True)
        return not path.exists()
    except OSError:
        return False
    finally:
        if fd is not None:
            os.close(fd)
