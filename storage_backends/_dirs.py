"""Resolving keys under a local archive root, and the directories one run has seen or made.

A copy of many objects asks the same few directories the same questions
again and again: does it exist (before each temp file), is it a real
directory and not a link (before each key is resolved). A run's view of the
root (``LocalBackend.run_view``) remembers the answers for the run, so each
directory is checked once and made once, by one thread: concurrent writers to
one new directory never race each other into failing ``mkdir`` calls.

The plain backend remembers nothing: a long-lived process (a worker, the
receiver) sees a directory replaced by a link at its next operation. Within
one run, a directory swapped for a link after it was checked is not noticed
until the next run; only someone who can already write into the root can do
that.
"""

from __future__ import annotations

import os
import stat as stat_mod
import threading
from pathlib import Path

from storage_backends._streams import make_dirs


class KnownDirs:
    """Paths (as strings) of directories known to exist and not to be links."""

    def __init__(self, root: Path, *, remember: bool) -> None:
        self._root = root
        self._remember = remember
        self._seen: set[str] = set()
        # Held only while making directories, which happens once per directory.
        self._making = threading.Lock()

    def walk(self, parts: list[str], *, last: bool = True) -> tuple[bool, int | None]:
        """Whether no existing component of a key is a link, and the ``lstat`` mode of its last.

        Keys have no ``.``/``..`` segments, so only a symlink could lead outside
        the root (or be swapped later). One ``lstat`` per component that exists,
        except directories already known; the root itself was resolved once
        when the backend was opened. The mode is ``None`` when nothing is there.
        With ``last=False`` only the directories are walked (the mode is then
        that of the deepest one checked, or ``None``).
        """
        current = str(self._root)
        if not last:
            parts = parts[:-1]
        final = len(parts) - 1 if last else len(parts)
        mode = None
        for index, part in enumerate(parts):
            current = os.path.join(current, part)
            if index < final and current in self._seen:
                continue
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return True, None  # nothing further exists, so nothing further links
            if stat_mod.S_ISLNK(mode):
                return False, mode
            if stat_mod.S_ISDIR(mode) and self._remember:
                self._seen.add(current)
        return True, mode

    def ensure(self, directory: Path, *, fsync: bool) -> None:
        """Make ``directory`` (and its parents) exist; a failure names the directory.

        Raises ``OSError`` of the kind that failed, with the directory (relative
        to the root) in its message.
        """
        if str(directory) in self._seen:
            return
        if not self._remember:
            self._make(directory, fsync=fsync)
            return
        with self._making:
            if str(directory) in self._seen:
                return
            self._make(directory, fsync=fsync)
            current = directory
            while current != self._root and current != current.parent:
                self._seen.add(str(current))
                current = current.parent

    def _make(self, directory: Path, *, fsync: bool) -> None:
        try:
            make_dirs(directory, fsync=fsync, known=self._seen)
        except OSError as exc:
            where = os.path.relpath(exc.filename or directory, self._root)
            raise OSError(
                exc.errno, f"cannot create directory {where!r} in the archive root: {exc.strerror}"
            ) from exc
