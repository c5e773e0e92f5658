"""A rich progress bar for segments and bytes, drawn only on a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

if TYPE_CHECKING:
    from ..archive import Outcome


class RunProgress:
    """Counts finished segments and archived bytes; silent when disabled."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._bytes = 0

    def start(self, total: int) -> None:
        """Begin drawing, for ``total`` segments waiting."""
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("segments"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[size]} archived"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("segments", total=total, size=filesize.decimal(0))
        self._progress.start()

    def advance(self, outcome: Outcome) -> None:
        """One segment finished (archived, skipped or failed)."""
        self.step(outcome.size)

    def step(self, size: int = 0) -> None:
        """One segment finished, ``size`` bytes of it newly archived."""
        if self._progress is None or self._task is None:
            return
        self._bytes += size
        self._progress.update(self._task, advance=1, size=filesize.decimal(self._bytes))

    def stop(self) -> None:
        """Stop drawing and leave the final state on screen."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
