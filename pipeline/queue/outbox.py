"""``serve --broker``: the receiver's journal as a transactional outbox.

The receiver still commits each verified delivery to its journal before it
answers 200. This forwarder then turns each committed delivery into segment
tasks and a manifest message on the broker, and only once the broker has
confirmed them marks the delivery processed. A broker outage therefore
refuses nothing and loses nothing: deliveries wait in the journal (the outbox
depth, shown at ``/metrics``) and are forwarded when the broker is back.
A delivery forwarded twice (a crash between the publish and the mark, or two
receivers given the same delivery) is archived once downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from celery import Celery
from prometheus_client import Gauge

from ..journal import Journal
from ..live.metrics import ReceiverMetrics
from .app import BrokerSettings, make_app
from .enqueue import Planned, plan_payload, publish_planned
from .errors import BrokerUnavailable

log = logging.getLogger(__name__)

#: Seconds between forwarding passes when nothing wakes the forwarder.
TICK = 2.0
#: Seconds to wait after the broker refused, before trying again.
RETRY_PAUSE = 1.0
#: A receiver must not hang on a dead broker: few, short publish retries, then the next pass.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 0.5}


class BrokerOutbox:
    """Forwards the journal's unprocessed deliveries to the broker (start, wake, stop)."""

    def __init__(self, app: Celery, journal: Journal, *, tick: float = TICK) -> None:
        self.app = app
        self.journal = journal
        self.tick = tick
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_receiver(
        cls, settings: BrokerSettings, journal: Journal, metrics: ReceiverMetrics
    ) -> BrokerOutbox:
        """An outbox on ``settings``' broker whose depth is a gauge of the receiver's metrics."""
        outbox = cls(make_app(settings), journal)
        depth = Gauge(
            "track_archive_outbox_depth",
            "Deliveries committed to the journal and not yet forwarded to the broker.",
            registry=metrics.registry,
        )
        depth.set_function(lambda: float(outbox.depth()))
        return outbox

    def depth(self) -> int:
        """Deliveries waiting to be forwarded."""
        return int(self.journal.counts().get("events_unprocessed", 0))

    def wake(self) -> None:
        """A delivery was committed: forward it soon."""
        self._wake.set()

    async def start(self) -> None:
        """Forward what an earlier process left, then whatever arrives."""
        self._task = asyncio.create_task(self._run(), name="broker-outbox")
        self._wake.set()

    async def stop(self) -> None:
        """Stop forwarding (what is left stays in the journal for the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.app.close)

    async def _run(self) -> None:
        while True:
            # asyncio.wait, not wait_for: under 3.11 wait_for may swallow a cancellation.
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=self.tick)
            finally:
                waiter.cancel()
            self._wake.clear()
            try:
                await asyncio.to_thread(self.forward_pending)
            except BrokerUnavailable as exc:
                log.warning(
                    "broker unavailable, %d deliveries wait in the outbox: %s", self.depth(), exc
                )
                await asyncio.sleep(RETRY_PAUSE)
            except Exception:  # keep receiving; the next pass retries
                log.exception("forwarding deliveries to the broker failed")
                await asyncio.sleep(RETRY_PAUSE)

    def forward_pending(self) -> int:
        """Forward every unprocessed delivery; return how many segments were queued."""
        queued = 0
        while records := self.journal.unprocessed_events(limit=100):
            for record in records:
                planned = Planned()
                plan_payload(planned, record.payload, source=record.source, at=record.received_at)
                for error in planned.input_errors:
                    log.error(
                        "journaled delivery %s cannot be archived: %s", record.event_id[:12], error
                    )
                queued += publish_planned(self.app, planned, retry_policy=PUBLISH_RETRY)
                # Out of the outbox only once the broker confirmed every message.
                self.journal.add_segments(record.event_id, [])
        return queued
