"""One pool for a whole sync: steps run in batches, outcomes come back to the caller's thread.

A sync of many small objects spends more on hand-offs than on work when every
object is its own task: a queue put, a worker wake-up and a completion
notice per object, each a futex call under contention. Steps are therefore
grouped into batches (a few per worker, never more than ``BATCH_BYTES`` or
``BATCH_STEPS`` at once, so the load still spreads evenly), and finished
batches come back through one queue that the calling thread drains. Tasks
may be added while others run, ahead of those waiting (a session's manifest
starts as soon as its segments are done), which ``as_completed`` over a
fixed set cannot do.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from queue import Empty, SimpleQueue

from .plan import Step
from .report import SyncItem

#: Outcomes of one batch, in the order its steps ran; ``None``: the step must wait and run again.
Outcomes = list[tuple[Step, SyncItem | None]]
#: What a task does with one step.
Work = Callable[[Step], SyncItem | None]
#: Batches per worker the steps are cut into: enough that workers finish together.
BATCHES_PER_WORKER = 4
#: At most this many steps, or this many bytes, per batch.
BATCH_STEPS = 32
BATCH_BYTES = 16 * 1024 * 1024


def batches(steps: list[Step], workers: int) -> list[list[Step]]:
    """Cut ``steps`` (in order) into batches; a large object is a batch of its own."""
    if not steps:
        return []
    per_batch = max(1, min(BATCH_STEPS, math.ceil(len(steps) / (workers * BATCHES_PER_WORKER))))
    cut: list[list[Step]] = []
    current: list[Step] = []
    size = 0
    for step in steps:
        if current and (len(current) >= per_batch or size + step.size > BATCH_BYTES):
            cut.append(current)
            current, size = [], 0
        current.append(step)
        size += step.size
    cut.append(current)
    return cut


class Scheduler:
    """The run's thread pool and the queue its finished batches arrive on.

    Each queued batch puts one token in the pool; a worker taking a token runs
    the most urgent batch waiting at that moment, so a manifest submitted
    while many copies wait goes to the next free worker, not behind them.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="sync")
        self._done: SimpleQueue[Future[Outcomes]] = SimpleQueue()
        self._running: set[Future[Outcomes]] = set()
        self._urgent: deque[tuple[list[Step], Work]] = deque()
        self._backlog: deque[tuple[list[Step], Work]] = deque()

    def queue(self, batches: list[list[Step]], work: Work) -> None:
        """Run ``batches`` in order, after anything submitted as urgent."""
        for batch in batches:
            self._backlog.append((batch, work))
            self._token()

    def submit(self, steps: list[Step], work: Work) -> None:
        """Run ``work`` on ``steps`` as the next task any worker starts."""
        self._urgent.append((steps, work))
        self._token()

    def _token(self) -> None:
        future = self.pool.submit(self._run_next)
        self._running.add(future)
        future.add_done_callback(self._done.put)

    def _run_next(self) -> Outcomes:
        # One token per batch: whichever deque is popped, a batch is there.
        try:
            steps, work = self._urgent.popleft()
        except IndexError:
            steps, work = self._backlog.popleft()
        return [(step, work(step)) for step in steps]

    def collect(self, *, block: bool = True) -> Outcomes | None:
        """The outcomes of one finished batch; ``None`` when none is (or, unblocked, yet).

        An exception a batch raised (a bug, not a failed copy) is raised here.
        """
        if not self._running:
            return None
        try:
            future = self._done.get(block=block)
        except Empty:
            return None
        self._running.discard(future)
        return future.result()

    def shutdown(self) -> None:
        """Cancel what has not started, wait for what has."""
        for future in self._running:
            future.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self._urgent.clear()
        self._backlog.clear()
