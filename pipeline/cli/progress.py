"""A rich progress bar for files and bytes, drawn only on a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

if TYPE_CHECKING:
    from ..archive import Outcome
    from ..journal import Journal


class RunProgress:
    """Counts finished segments and archived bytes; silent when disabled."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._files = self._bytes = None

    def start(self, journal: Journal) -> None:
        """Begin drawing, sized by the segments waiting in the journal."""
        if not self.enabled:
            return
        counts = journal.counts()
        total = counts.get("pending", 0) + counts.get("active", 0)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._files = self._progress.add_task("segments", total=total)  # type: ignore[assignment]  # rich TaskID is an int
        self._bytes = self._progress.add_task("bytes", total=None)  # type: ignore[assignment]  # as above
        self._progress.columns = (*self._progress.columns, DownloadColumn())
        self._progress.start()

    def advance(self, outcome: Outcome) -> None:
        """One segment finished."""
        if self._progress is None or self._files is None or self._bytes is None:
            return
        self._progress.advance(self._files)
        self._progress.advance(self._bytes, outcome.size)

    def stop(self) -> None:
        """Stop drawing and leave the final state on screen."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
