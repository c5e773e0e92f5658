"""Directories of a local archive root that one run has already seen or made.

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

    def __contains__(self, path: object) -> bool:
        return path in self._seen

    def add(self, path: str) -> None:
        """Remember that ``path`` was found to be a real directory."""
        if self._remember:
            self._seen.add(path)

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
