"""Group commit: concurrent deliveries share one journal transaction.

A delivery may only be answered once it is on disk, and every commit costs a
sync. Committing each delivery on its own serialises the receiver behind the
journal; here one thread takes whatever deliveries are queued, commits them
in one transaction (:meth:`Journal.record_events`), then settles each
waiting request. While one batch is being written the next one gathers, so
the batch grows with the load and no delivery waits for a timer.

The rule that makes it safe: a request's future is settled only after the
transaction holding its delivery has committed, so no answer ever goes out
for a delivery that is not on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass

from ..errors import JournalError
from .base import Journal, NewEvent

log = logging.getLogger(__name__)

#: Most deliveries in one transaction; keeps the journal lock short for the other writers.
MAX_BATCH = 256


@dataclass(slots=True)
class _Waiting:
    event: NewEvent
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bool]


_Settled = tuple["asyncio.Future[bool]", "bool | BaseException"]


def _settle(items: list[_Settled]) -> None:
    """Runs on the requests' event loop: one wake-up for a whole batch."""
    for future, value in items:
        if future.cancelled():
            continue  # the client went away; its delivery is committed all the same
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


class GroupCommitter:
    """One committer thread in front of a journal; ``with`` starts and stops it."""

    def __init__(self, journal: Journal, *, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.journal = journal
        self.max_batch = max_batch
        #: Transactions committed and deliveries they held (``deliveries / batches`` is the grouping).
        self.batches = 0
        self.deliveries = 0
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="journal-committer", daemon=True)
        self._stopping = False

    def start(self) -> GroupCommitter:
        """Start the committer thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""
        self._stopping = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def __enter__(self) -> GroupCommitter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def record(self, event: NewEvent) -> bool:
        """Commit ``event`` durably (with whatever else is queued); ``False`` for a duplicate.

        Raises ``JournalError`` when the journal refused the transaction.
        """
        if self._stopping or not self._thread.is_alive():
            raise JournalError("the journal is closing")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put(_Waiting(event, loop, future))
        return await future

    def _next_batch(self) -> tuple[list[_Waiting], bool]:
        """Block for one delivery, then take every other one already queued."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._next_batch()
            if not batch:
                continue
            outcome: list[bool] | BaseException
            try:
                outcome = self.journal.record_events([w.event for w in batch])
                self.batches += 1
                self.deliveries += len(batch)
            except JournalError as exc:
                outcome = exc
            except Exception as exc:  # never leave a request waiting forever
                log.exception("group commit failed")
                outcome = JournalError(f"the journal could not commit: {exc}")
            by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
            for n, waiting in enumerate(batch):
                value = outcome if isinstance(outcome, BaseException) else outcome[n]
                by_loop.setdefault(waiting.loop, []).append((waiting.future, value))
            for loop, items in by_loop.items():
                # A closed loop has nobody waiting any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, items)
