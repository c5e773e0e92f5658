"""Background archive workers inside the receiver process.

The receiver only commits each delivery to the journal; these workers do the
rest with the same ``Archiver`` as ``archive``: expand deliveries into segment
jobs, claim and archive them, and merge outcomes into manifests. A delivery
wakes them; a periodic tick also picks up anything a previous process left
(pending jobs, leases of a dead process), so work resumes after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..archive import Archiver
from ..journal import SegmentRecord, worker_name
from .lifecycle import StuckWatch
from .metrics import ReceiverMetrics

log = logging.getLogger(__name__)

#: Seconds to wait after a worker hits an unexpected error, so a broken journal is not hammered.
ERROR_PAUSE = 1.0
#: Seconds to let a burst of deliveries gather before expanding them in one pass.
BATCH_DELAY = 0.05
#: Manifests are merged at most this often (seconds); each merge rewrites whole documents.
FLUSH_INTERVAL = 0.5
#: Under load a merge may take long; waiting this many times its duration before the next
#: one keeps merges to a small share of the process, so they never starve the receiver.
FLUSH_SPACING = 4.0
#: Open tracks are checked for being stuck at most this often (seconds): the check visits
#: every open track, and a burst of deliveries wakes the coordinator many times a second.
STUCK_CHECK_INTERVAL = 1.0
#: Seconds a stopping receiver waits for its tasks to end.
STOP_TIMEOUT = 10.0


class ArchiveWorkers:
    """``concurrency`` worker tasks plus one task that expands deliveries and flushes manifests."""

    def __init__(
        self,
        archiver: Archiver,
        *,
        concurrency: int,
        metrics: ReceiverMetrics,
        stuck: StuckWatch,
        tick: float = 30.0,
    ) -> None:
        self.archiver = archiver
        self.concurrency = concurrency
        self.metrics = metrics
        self.stuck = stuck
        self.tick = tick
        self._wake = asyncio.Event()
        # Replaced by a fresh event each time new jobs are queued; setting the old one wakes idle workers.
        self._news = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._name = worker_name()

    def wake(self) -> None:
        """A delivery was committed: bring its session's manifest up to date."""
        self._wake.set()

    def jobs_queued(self) -> None:
        """Segment jobs were committed with a delivery: idle workers claim them now."""
        news, self._news = self._news, asyncio.Event()
        news.set()

    async def start(self) -> None:
        """Start the tasks; pending work from an earlier process is picked up at once."""
        self._tasks.append(asyncio.create_task(self._coordinate(), name="live-coordinator"))
        for n in range(self.concurrency):
            self._tasks.append(asyncio.create_task(self._worker(n), name=f"live-worker-{n}"))
        self._wake.set()

    async def stop(self) -> None:
        """Stop every task, give claimed segments back, then bring manifests up to date."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
            for task in stuck:
                log.error("live worker %s did not stop in time", task.get_name())
        self._tasks.clear()
        try:
            await self.archiver.flush_manifests()
        except Exception:  # shutting down: report, never mask the stop
            log.exception("could not update manifests while stopping")

    # -- the coordinator --------------------------------------------------------

    async def _coordinate(self) -> None:
        last_flush = -FLUSH_INTERVAL
        interval = FLUSH_INTERVAL
        flush_due = True
        next_stuck_check = 0.0
        while True:
            timeout = self.tick
            if flush_due:
                timeout = max(0.0, min(timeout, last_flush + interval - time.monotonic()))
            await _wait_event(self._wake, timeout)
            try:
                if self._wake.is_set():
                    # Let a burst of deliveries arrive, then expand them in one pass.
                    await asyncio.sleep(BATCH_DELAY)
                    self._wake.clear()
                    # Deliveries arrive with their jobs; this picks up any left unexpanded.
                    queued = await asyncio.to_thread(self.archiver.expand_pending)
                    flush_due = True
                    if queued:
                        self.jobs_queued()
                if flush_due and time.monotonic() - last_flush >= interval:
                    flush_due = False
                    began = time.monotonic()
                    await self.archiver.flush_manifests()
                    last_flush = time.monotonic()
                    interval = max(FLUSH_INTERVAL, FLUSH_SPACING * (last_flush - began))
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the receiver alive; the next pass retries
                flush_due = True
                log.exception("live workers: expanding deliveries or updating manifests failed")
                await asyncio.sleep(ERROR_PAUSE)
            if time.monotonic() < next_stuck_check:
                continue
            next_stuck_check = time.monotonic() + STUCK_CHECK_INTERVAL
            for (session, participant, kind), track in self.stuck.newly_stuck():
                log.warning(
                    "recording %s/%s/%s is %s since %s and has not stopped",
                    session,
                    participant,
                    kind,
                    track.state.value,
                    track.first_seen.isoformat(),
                )

    # -- the workers ----------------------------------------------------------

    async def _claim(self, name: str) -> SegmentRecord | None:
        """Claim in a thread; if cancelled meanwhile, hand back what the thread claimed."""
        future = asyncio.ensure_future(
            asyncio.to_thread(
                self.archiver.journal.claim, name, lease_seconds=self.archiver.lease_seconds
            )
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            record = await future
            if record is not None:
                await asyncio.to_thread(self.archiver.journal.release, record.segment_id, name)
            raise

    async def _worker(self, n: int) -> None:
        name = f"{self._name}:live{n}"
        while True:
            news = self._news
            try:
                record = await self._claim(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live worker %d: cannot claim work", n)
                await asyncio.sleep(ERROR_PAUSE)
                continue
            if record is None:
                await _wait_event(news, self.tick)
                continue
            await self._archive(record, name)

    async def _archive(self, record: SegmentRecord, name: str) -> None:
        started = time.monotonic()
        try:
            outcome = await self.archiver.process(record, name)
        except asyncio.CancelledError:
            await asyncio.to_thread(self.archiver.journal.release, record.segment_id, name)
            raise
        except Exception as exc:
            log.exception("live worker: archiving %s failed unexpectedly", record.source_url)
            try:
                # Bounded retries with backoff: a segment failing the same way every time is
                # tried a few times, then recorded as failed, never fetched once a second forever.
                outcome = await self.archiver.settle_unexpected(record, name, exc)
            except Exception:  # the journal itself is failing: hand back, and do not hammer it
                log.exception("live worker: cannot record the failure of %s", record.source_url)
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.archiver.journal.release, record.segment_id, name)
                await asyncio.sleep(ERROR_PAUSE)
                return
        self.metrics.latency.observe(time.monotonic() - started)
        self.metrics.segments.inc(outcome=outcome.state)
        if outcome.state == "archived":
            self.metrics.bytes.inc(outcome.size)
        self._wake.set()


async def _wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` passed.

    ``asyncio.wait`` is used rather than ``wait_for``: under Python 3.11,
    ``wait_for`` can swallow a cancellation that races with the wait ending,
    and a worker that misses its cancellation would hang the shutdown.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
