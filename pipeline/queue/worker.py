"""One worker process: archive a segment job with the same code as ``archive``.

A ``SegmentWorker`` owns what a process shares between its task threads: one
archive backend, one quarantine backend, one ``Downloader`` (its connection
pool and limits) on one event loop thread, a local staging directory, and the
publisher of manifest entries. ``archive`` is called from Celery's task
threads and blocks until the segment is archived, skipped or refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from celery import Celery

from storage_backends import Backend, BackendUnavailable, StorageError
from storage_backends.checksums import hash_file
from storage_backends.keys import fit_name

from ..archive.quarantine import REASON_SUFFIX
from ..archive.segments import manifest_segment
from ..archive.store import store_verified
from ..download import Downloader, DownloadPolicy, DownloadResult
from ..journal import SegmentState
from ..manifest import Failure, ManifestUpdate, read_manifest, utcnow
from .merger import publish_update
from .messages import SegmentJob
from .metrics import WorkerMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")


class LoopThread:
    """An asyncio loop on its own thread, so blocking task threads can share async code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="worker-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What happened to one job in this worker."""

    state: Literal["archived", "skipped", "failed"]
    size: int = 0
    reason: str | None = None


class SegmentWorker:
    """Archives jobs; see the module docstring. Use as a context manager."""

    def __init__(
        self,
        *,
        app: Celery,
        backend: Backend,
        quarantine: Backend,
        policy: DownloadPolicy,
        staging: Path,
        metrics: WorkerMetrics,
    ) -> None:
        self.app = app
        self.backend = backend
        self.quarantine = quarantine
        self.policy = policy
        self.staging = staging
        self.metrics = metrics
        self._loop: LoopThread | None = None
        self._downloader: Downloader | None = None

    def __enter__(self) -> SegmentWorker:
        self.staging.mkdir(parents=True, exist_ok=True)
        self._loop = LoopThread()
        downloader = Downloader(self.policy)
        self._downloader = self._loop.run(downloader.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            if self._downloader is not None:
                self._loop.run(self._downloader.__aexit__(None, None, None))
            self._loop.close()
        self._loop = self._downloader = None

    # -- one job --------------------------------------------------------------

    def archive(self, job: SegmentJob, *, final_attempt: bool) -> TaskOutcome:
        """Archive ``job`` unless the archive already holds it.

        ``BackendUnavailable`` propagates (the task retries it) unless this is
        the ``final_attempt``, when it becomes a recorded failure.
        """
        started = time.monotonic()
        if self._in_archive(job):
            log.info("already archived: %s", job.key)
            self.metrics.segments.labels(outcome="skipped").inc()
            return TaskOutcome("skipped")
        assert self._loop is not None and self._downloader is not None
        # Unique per attempt: two deliveries of one job may run here at once.
        staged = self.staging / f"{job.segment_id}.{uuid.uuid4().hex[:8]}.part"
        try:
            log.info("fetching %s -> %s", job.source_url, job.key)
            result = self._loop.run(self._downloader.fetch(job.source_url, staged, kind=job.kind))
            if not result.ok:
                return self._fail(job, result, result.reason or "verification failed")
            try:
                stored = store_verified(self.backend, job.key, result)
            except BackendUnavailable as exc:
                if not final_attempt:
                    raise
                return self._fail(job, result, f"storage: {exc}")
            except StorageError as exc:
                return self._fail(job, result, f"storage: {exc}")
        finally:
            staged.unlink(missing_ok=True)
        record = job.record(state=SegmentState.DONE, updated_at=utcnow())
        segment = manifest_segment(record, stored)
        publish_update(
            self.app,
            ManifestUpdate(
                session_id=job.session_id,
                meeting_id=job.meeting_id,
                segments=[(job.participant_id, job.kind, segment)],
            ),
        )
        self.metrics.seconds.observe(time.monotonic() - started)
        if stored.already:
            log.info("already stored by another worker: %s", stored.key)
            self.metrics.segments.labels(outcome="skipped").inc()
            return TaskOutcome("skipped")
        log.info("archived %s (%d bytes)", stored.key, result.size)
        self.metrics.segments.labels(outcome="archived").inc()
        self.metrics.bytes.inc(result.size)
        return TaskOutcome("archived", size=result.size)

    def _in_archive(self, job: SegmentJob) -> bool:
        """Its manifest lists this source's file and the object is at that key."""
        # Nothing at its natural key: not archived (one HEAD, the common case of new work).
        if self.backend.stat(job.key) is None:
            return False
        manifest, _ = read_manifest(self.backend, job.session_id)
        if manifest is None:
            return False
        for pid, kind, segment in manifest.segments():
            if (pid, kind) == (
                job.participant_id,
                job.kind,
            ) and job.source_url in segment.source_urls():
                return self.backend.stat(segment.key) is not None
        return False

    def _fail(self, job: SegmentJob, result: DownloadResult, reason: str) -> TaskOutcome:
        kept = self._keep_refused(job, result, reason)
        failure = Failure(
            participantId=job.participant_id,
            kind=job.kind,
            sourceUrl=job.source_url,
            reason=reason,
            at=utcnow(),
            quarantine=kept,
        )
        publish_update(
            self.app,
            ManifestUpdate(
                session_id=job.session_id, meeting_id=job.meeting_id, failures=[failure]
            ),
        )
        log.error("not archived: %s (%s)", job.key, reason)
        self.metrics.segments.labels(outcome="failed").inc()
        return TaskOutcome("failed", reason=reason)

    def _keep_refused(self, job: SegmentJob, result: DownloadResult, reason: str) -> str | None:
        """Refused bytes and their reason into the quarantine backend; the key kept, if any."""
        base, reason_key = quarantine_keys(job.key, utcnow().strftime("%Y%m%dT%H%M%S%f"))
        details = result.as_dict()
        details.update(reason=reason, quarantined_at=utcnow().isoformat(), staged_bytes=None)
        kept: str | None = None
        try:
            if result.path is not None and result.path.exists():
                crc32c, sha256, _ = hash_file(result.path)
                self.quarantine.put_file(base, result.path, crc32c=crc32c, sha256=sha256)
                kept = details["staged_bytes"] = f"{self.quarantine.url.rstrip('/')}/{base}"
            details.pop("path", None)
            self.quarantine.put_bytes(
                reason_key,
                (json.dumps(details, indent=2, default=str) + "\n").encode(),
                content_type="application/json",
            )
        except StorageError as exc:
            # The failure itself is still recorded in the manifest; only the evidence is missing.
            log.error("could not quarantine %s: %s", job.key, exc)
        return kept


def quarantine_keys(key: str, stamp: str) -> tuple[str, str]:
    """The quarantine keys of a refused segment's bytes and of its reason, beside each other.

    ``stamp`` keeps each refusal of a key apart. A file name near the filesystem's
    255-byte limit is shortened (``fit_name``) so that the reason's name fits too.
    """
    head, _, name = key.rpartition("/")
    kept = fit_name(name, f".{stamp}{REASON_SUFFIX}")[: -len(REASON_SUFFIX)]
    base = f"{head}/{kept}" if head else kept
    return base, base + REASON_SUFFIX
