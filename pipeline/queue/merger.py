"""Manifest entries through the broker, merged in batches.

A segment task publishes its finished entry to the durable manifest queue
(publisher-confirmed) before it returns and is acknowledged. Each worker runs
one merger thread that takes up to ``queue.merge_batch`` of those messages (or
whatever came within ``queue.merge_wait`` seconds), merges each session's share
with one compare-and-swap write, and only then acknowledges them. A worker
that dies leaves its unacknowledged entries on the queue for another merger;
merging an entry twice changes nothing. So 8 workers finishing one session's
200 segments write its manifest a handful of times, not 200.

A session whose manifest cannot be written (edited by hand into something
else) is logged once; its entries go back on the queue as one message behind
everyone else's, and a pass that wrote nothing waits (doubling up to a minute)
before reading such manifests again, so it neither floods the log nor holds
up any other session.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError

from storage_backends import Backend, StorageError

from ..errors import TrackArchiveError
from ..manifest import ManifestUpdate, update_manifest
from .app import MANIFEST_QUEUE, manifest_queue
from .errors import BrokerUnavailable, MalformedMessage
from .messages import combine, update_from_message, update_to_message
from .metrics import WorkerMetrics

log = logging.getLogger(__name__)

#: Seconds between reconnection attempts when the broker is away.
RECONNECT_PAUSE = 1.0
#: First pause after a merge pass that wrote no manifest at all, and the longest.
RETRY_PAUSE = 1.0
MAX_RETRY_PAUSE = 60.0
#: kombu's publish retries: long enough to ride out a broker restart.
PUBLISH_RETRY = {"max_retries": 30, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 2}
_CONNECTION_ERRORS = (OSError, ConnectionError, KombuError)


def publish_update(
    app: Celery, update: ManifestUpdate, *, retry_policy: dict[str, Any] | None = None
) -> None:
    """Put one session's update on the manifest queue; returns once the broker has it."""
    queue = manifest_queue()
    try:
        with app.producer_or_acquire() as producer:
            producer.publish(
                update_to_message(update),
                exchange=queue.exchange,
                routing_key=MANIFEST_QUEUE,
                declare=[queue],
                delivery_mode=2,
                serializer="json",
                retry=True,
                retry_policy=retry_policy or PUBLISH_RETRY,
            )
    except _CONNECTION_ERRORS as exc:
        raise BrokerUnavailable(f"cannot publish to {MANIFEST_QUEUE}: {exc}") from exc


class ManifestMerger:
    """One thread draining the manifest queue in batches (see the module docstring)."""

    def __init__(
        self,
        app: Celery,
        backend: Backend,
        *,
        batch: int,
        wait: float,
        metrics: WorkerMetrics,
    ) -> None:
        self.app = app
        self.backend = backend
        self.batch = batch
        self.wait = wait
        self.metrics = metrics
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="manifest-merger", daemon=True)
        self._buffer: list[tuple[Any, ManifestUpdate]] = []
        self._first_at = 0.0
        #: Sessions whose manifest could not be written, with the reason logged for each.
        self._failing: dict[str, str] = {}
        self._pause = 0.0
        self._hold_until = 0.0

    def start(self) -> None:
        """Start draining."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Merge what is buffered, acknowledge it, and stop."""
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the manifest merger did not stop within %.0f s", timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._consume()
            except _CONNECTION_ERRORS as exc:
                # Unacknowledged entries go back to the queue with the lost connection.
                self._buffer.clear()
                log.warning("manifest merger: broker connection lost (%s); reconnecting", exc)
                self._stop.wait(RECONNECT_PAUSE)
            except Exception:  # keep merging; the entries stay on the queue
                self._buffer.clear()
                log.exception("manifest merger failed; reconnecting")
                self._stop.wait(RECONNECT_PAUSE)

    def _consume(self) -> None:
        with self.app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            with conn.Consumer(
                [manifest_queue()],
                callbacks=[self._on_message],
                accept=["json"],
                prefetch_count=self.batch,
            ):
                while not self._stop.is_set():
                    # socket.timeout is TimeoutError: nothing arrived in time.
                    with contextlib.suppress(TimeoutError):
                        conn.drain_events(timeout=min(0.2, self.wait))
                    now = time.monotonic()
                    if (
                        self._buffer
                        and now >= self._hold_until
                        and (len(self._buffer) >= self.batch or now - self._first_at >= self.wait)
                    ):
                        self._flush()
                # Stopping: whatever arrived is merged and acknowledged now.
                self._flush()

    def _on_message(self, body: Any, message: Any) -> None:
        try:
            update = update_from_message(body)
        except MalformedMessage as exc:
            self.metrics.malformed.inc()
            log.error("malformed manifest message dropped (not retried): %s", exc)
            message.ack()
            return
        if not self._buffer:
            self._first_at = time.monotonic()
        self._buffer.append((message, update))

    def _flush(self) -> None:
        by_session: dict[str, list[tuple[Any, ManifestUpdate]]] = defaultdict(list)
        for message, update in self._buffer:
            by_session[update.session_id].append((message, update))
        self._buffer = []
        written = failed = 0
        for session_id, items in by_session.items():
            combined = combine([u for _, u in items])
            try:
                update_manifest(self.backend, combined, on_lost_race=self.metrics.cas_retries.inc)
            except (StorageError, TrackArchiveError) as exc:
                failed += 1
                self._set_aside(session_id, combined, [m for m, _ in items], str(exc))
                continue
            written += 1
            if self._failing.pop(session_id, None) is not None:
                log.info("manifest of session %s written again", session_id)
            self.metrics.manifest_writes.inc()
            self.metrics.manifest_entries.inc(len(items))
            log.info("manifest of session %s updated with %d entries", session_id, len(items))
            for message, _ in items:
                message.ack()
        if failed and not written:
            # Only failing sessions on the queue: wait before reading their manifests again.
            self._pause = min(max(2 * self._pause, RETRY_PAUSE), MAX_RETRY_PAUSE)
            self._hold_until = time.monotonic() + self._pause
        elif written:
            self._pause = 0.0

    def _set_aside(
        self, session_id: str, update: ManifestUpdate, messages: list[Any], reason: str
    ) -> None:
        """Put a session's entries back behind everything queued, as one message; log once per reason.

        Requeued as they were, they would come back first and, a batch's worth of them,
        hold every other session's entries back until the manifest is mended.
        """
        if self._failing.get(session_id) != reason:
            self._failing[session_id] = reason
            log.error(
                "manifest of session %s not updated (its entries wait on the queue; other "
                "sessions go on): %s",
                session_id,
                reason,
            )
        try:
            publish_update(self.app, update)
        except BrokerUnavailable:
            for message in messages:
                message.requeue()
            return
        for message in messages:
            message.ack()
