"""The command line's one progress display: rich bars on stderr, drawn only on a terminal.

``archive`` (and ``demo``), ``sync`` and ``export`` each follow their work
through :class:`Bar`; each counter says how it shows its amounts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID

    from ..archive import Outcome

#: Turns a counter's amount done and its total (``None``: not known yet) into its text.
Shown = Callable[[float, float | None], str]


def counted(done: float, total: float | None) -> str:
    """``3/10``."""
    return f"{done:.0f}/{total:.0f}" if total is not None else f"{done:.0f}"


def sized(done: float, total: float | None) -> str:
    """``1.2 MB/4.0 MB``."""
    from rich import filesize

    shown = filesize.decimal(int(done))
    return f"{shown}/{filesize.decimal(int(total))}" if total is not None else shown


@dataclass
class _Counter:
    shown: Shown
    done: float = 0.0
    total: float | None = None


class Bar:
    """One or more counters on stderr; starts drawing at :meth:`start`, stops at :meth:`stop`."""

    def __init__(self) -> None:
        # rich loads with the first bar: runs that draw none (pipes, --json) never need it.
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[shown]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._counters: dict[TaskID, _Counter] = {}

    def counter(self, label: str, total: float | None, shown: Shown = counted) -> TaskID:
        """Add a counter of ``total`` (``None``: not known yet)."""
        task = self._progress.add_task(label, total=total, shown=shown(0, total))
        self._counters[task] = _Counter(shown, total=total)
        return task

    def set_total(self, task: TaskID, total: float) -> None:
        """The counter's total became known."""
        counter = self._counters[task]
        counter.total = total
        self._progress.update(task, total=total, shown=counter.shown(counter.done, total))

    def advance(self, task: TaskID, amount: float = 1) -> None:
        """Count ``amount`` more done."""
        counter = self._counters[task]
        counter.done += amount
        shown = counter.shown(counter.done, counter.total)
        self._progress.update(task, advance=amount, shown=shown)

    def start(self) -> None:
        """Begin drawing."""
        self._progress.start()

    def stop(self) -> None:
        """Stop drawing and leave the final state on screen."""
        self._progress.stop()


class RunProgress:
    """An archive run's segments and archived bytes (``pipeline.run.Progress``); silent when disabled."""

    def __init__(self, *, enabled: bool) -> None:
        self._bar = Bar() if enabled else None
        self._task: TaskID | None = None
        self._bytes = 0

    def start(self, total: int) -> None:
        """Begin drawing, for ``total`` segments waiting."""
        if self._bar is None:
            return
        self._task = self._bar.counter("segments", total, self._shown)
        self._bar.start()

    def _shown(self, done: float, total: float | None) -> str:
        from rich import filesize

        return f"{counted(done, total)} {filesize.decimal(self._bytes)} archived"

    def advance(self, outcome: Outcome) -> None:
        """One segment finished (archived, skipped or failed)."""
        self.step(outcome.size)

    def step(self, size: int = 0) -> None:
        """One segment finished, ``size`` bytes of it newly archived."""
        if self._bar is None or self._task is None:
            return
        self._bytes += size
        self._bar.advance(self._task)

    def stop(self) -> None:
        """Stop drawing and leave the final state on screen."""
        if self._bar is not None and self._task is not None:
            self._bar.stop()
            self._task = None
