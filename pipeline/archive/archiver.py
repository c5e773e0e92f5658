"""The archiver: webhooks in, verified objects and manifests out.

Batch runs (``archive``) and the live receiver's workers share this class:
deliveries are committed to the journal first, expanded into segment jobs,
then claimed by workers, so a crash at any point is resumed by the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage_backends import Backend, StorageError
from storage_backends.sealed import reseal_if_same

from ..download import DownloadResult
from ..errors import InputError
from ..events import OtherEvent, TrackEvent, canonical_event, parse_event
from ..journal import (
    Journal,
    NewEvent,
    NewSegment,
    Refusal,
    SegmentRecord,
    SegmentState,
    VerifiedDownload,
    worker_name,
)
from ..manifest import utcnow
from ..segment import StoredSegment
from .manifests import FlushReport, ManifestFlusher
from .quarantine import Quarantine
from .segments import manifest_segment, plan_segments
from .store import holds_exactly, store_verified
from .summary import Outcome, RunSummary, summarise

if TYPE_CHECKING:
    from ..download import Fetcher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a segment failing with an error no check expected is tried again.

    Up to ``max_attempts`` tries in all, the n-th retry ``backoff * 2**(n-1)``
    seconds after the failure; then it is recorded as failed with its reason.
    """

    max_attempts: int
    backoff: float

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure."""
        return self.backoff * 2 ** (failures - 1)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One validated delivery: the event, its segment jobs, and the row to commit.

    ``record`` is ``None`` for webhook types that are not track recordings
    (accepted, never journaled).
    """

    event: TrackEvent | OtherEvent
    jobs: list[NewSegment]
    record: NewEvent | None


class Archiver:
    """Turns journaled deliveries into archived segments and manifests."""

    def __init__(
        self,
        *,
        backend: Backend,
        journal: Journal,
        downloader: Fetcher,
        staging: Path,
        quarantine_dir: Path,
        quarantine_max_bytes: int | None = None,
        retry: RetryPolicy | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        lease_seconds: float = 4 * 3600.0,
    ) -> None:
        """``retry``: how unexpected failures are retried (``None``: recorded as failed at once)."""
        self.backend = backend
        self.journal = journal
        self.downloader = downloader
        self.staging = staging
        self.quarantine = Quarantine(quarantine_dir, max_bytes=quarantine_max_bytes)
        self.retry = retry
        self.on_outcome = on_outcome
        self.lease_seconds = lease_seconds
        self._manifests = ManifestFlusher(backend, journal)
        #: Sessions whose manifest the last flush could not write, with the reason.
        self.manifest_failures: dict[str, str] = {}
        self._expected_sizes: dict[str, int] = {}
        self._store_slots: asyncio.Semaphore | None = None

    def expect_size(self, segment_id: str, size: int) -> None:
        """Refuse the segment's download unless it is ``size`` bytes (a size listed by the service)."""
        self._expected_sizes[segment_id] = size

    # -- intake ---------------------------------------------------------------

    def ingest(
        self, payload: Any, *, source: str, line: int | None = None, expand: bool = True
    ) -> tuple[TrackEvent | OtherEvent, list[str]]:
        """Validate and journal one delivery; return it and its segment ids.

        With ``expand`` its segments are queued at once (and segments that
        failed before are re-queued); otherwise workers expand it later.
        Raises ``InputError`` naming the source, line and field at fault.
        """
        delivery = self.prepare(payload, source=source, line=line)
        if delivery.record is None:
            return delivery.event, []
        self.journal.record_events([delivery.record])
        if expand:
            self.journal.add_segments(delivery.record.event_id, delivery.jobs, retry_failed=True)
        return delivery.event, [job.segment_id for job in delivery.jobs]

    @staticmethod
    def prepare(
        payload: Any, *, source: str, line: int | None = None, with_segments: bool = False
    ) -> Delivery:
        """Validate one decoded delivery and serialize it once for the journal; writes nothing.

        ``with_segments`` puts its segment jobs in the record, so committing it
        queues them in the same transaction. Raises ``InputError`` naming the
        source, line and field at fault.
        """
        event = parse_event(payload, source=source, line=line)
        if isinstance(event, OtherEvent):
            return Delivery(event, [], None)
        jobs = plan_segments(event, source=source, line=line) if event.data.fileDetails else []
        eid, canonical = canonical_event(payload)
        record = NewEvent(
            event_id=eid,
            webhook_type=event.webhookType,
            payload_json=canonical,
            source=source if line is None else f"{source}:{line}",
            session_id=event.data.sessionId,
            participant_id=event.data.participantId,
            kind=event.data.kind,
            segments=tuple(jobs) if with_segments else None,
        )
        return Delivery(event, jobs, record)

    def expand_pending(self) -> int:
        """Turn journaled deliveries that were not expanded yet into segment jobs."""
        queued = 0
        for record in self.journal.unprocessed_events():
            jobs = []
            try:
                event = parse_event(record.payload, source=record.source)
                if isinstance(event, TrackEvent) and event.data.fileDetails:
                    jobs = plan_segments(event, source=record.source)
            except InputError as exc:
                log.error("journaled delivery %s cannot be archived: %s", record.event_id[:12], exc)
            queued += self.journal.add_segments(record.event_id, jobs)
        return queued

    # -- work -----------------------------------------------------------------

    async def run(self, *, concurrency: int, stop: asyncio.Event | None = None) -> list[Outcome]:
        """Work until no segment is pending (or ``stop`` is set); then update manifests."""
        await asyncio.to_thread(self.expand_pending)
        outcomes: list[Outcome] = []
        # Twice as many segments in hand as downloads at once: while some are being
        # verified or stored, the next ones are already downloading, so the network
        # never waits on a demux. The downloader bounds downloads and demuxes, the
        # store slots bound stores (an S3 upload's buffers): memory stays as it was.
        self._store_slots = asyncio.Semaphore(concurrency)
        workers = [
            asyncio.create_task(self._worker(f"{worker_name()}:{n}", outcomes, stop))
            for n in range(2 * concurrency)
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await self.flush_manifests(retry_now=True)
        return outcomes

    async def flush_manifests(self, *, retry_now: bool = False) -> FlushReport:
        """Merge finished work into the manifests (safe to call any time).

        A session that cannot be written is reported once and tried again
        after a pause (``retry_now`` skips the pause); the others go on.
        """
        report = await asyncio.to_thread(self._manifests.flush, retry_now=retry_now)
        self.manifest_failures = report.failed
        return report

    async def _worker(self, name: str, outcomes: list[Outcome], stop: asyncio.Event | None) -> None:
        while stop is None or not stop.is_set():
            # Journal commits are synced to disk: keep them off the event loop, which
            # may also be answering webhooks.
            record = await asyncio.to_thread(
                self.journal.claim, name, lease_seconds=self.lease_seconds
            )
            if record is None:
                return
            try:
                outcome = await self.process(record, name)
            except asyncio.CancelledError:
                self.journal.release(record.segment_id, name)
                raise
            except Exception as exc:  # one segment's surprise never stops the others
                log.exception("archiving %s failed unexpectedly", record.source_url)
                outcome = await self.settle_unexpected(record, name, exc)
            outcomes.append(outcome)
            if self.on_outcome is not None:
                self.on_outcome(outcome)

    async def process(self, record: SegmentRecord, worker: str) -> Outcome:
        """Download, verify and store one claimed segment; record the outcome."""
        staged = self.staging / _staged_name(record, worker)
        staged.parent.mkdir(parents=True, exist_ok=True)
        result, stored = await self._resume_verified(record)
        await asyncio.to_thread(self._drop_stale_staging, record, keep=result)
        if result is None:
            log.info("fetching %s -> %s", record.source_url, record.key)
            result = await self.downloader.fetch(
                record.source_url,
                staged,
                kind=record.kind,
                expected_size=self._expected_sizes.get(record.segment_id),
            )
            if not result.ok:
                return await self._refuse(
                    record, worker, result, result.reason or "verification failed"
                )
            await asyncio.to_thread(
                self.journal.note_verified, record.segment_id, worker, VerifiedDownload(result)
            )
        if stored is None:
            try:
                async with self._store_slots or contextlib.nullcontext():
                    stored = await asyncio.to_thread(
                        store_verified, self.backend, record.key, result
                    )
            except StorageError as exc:
                return await self._refuse(record, worker, result, f"storage: {exc}")
        if result.path is not None:
            result.path.unlink(missing_ok=True)
        await self._finish(record, worker, SegmentState.DONE, result=stored.to_json())
        if stored.conflict_with:
            log.warning(
                "segment %s stored at %s (different content already at its key)",
                record.source_url,
                stored.key,
            )
        if stored.already:
            log.info("already archived: %s", stored.key)
            return Outcome(record, "skipped", download=result, stored=stored)
        log.info("archived %s (%d bytes)", stored.key, stored.size)
        return Outcome(record, "archived", size=stored.size, download=result, stored=stored)

    def _noted_staging(self, record: SegmentRecord, noted: VerifiedDownload) -> Path | None:
        """The staged file an interrupted worker noted as verified (only inside our staging)."""
        name = noted.staged_name
        return self.staging / name if name.startswith(f"{record.segment_id}.") else None

    def _drop_stale_staging(self, record: SegmentRecord, keep: DownloadResult | None) -> None:
        """Remove what earlier claims of this segment left in staging (a killed run's partial file)."""
        keep_path = keep.path if keep is not None else None
        for path in self.staging.glob(f"{record.segment_id}.*.part"):
            if path != keep_path:
                path.unlink(missing_ok=True)

    async def _resume_verified(
        self, record: SegmentRecord
    ) -> tuple[DownloadResult | None, StoredSegment | None]:
        """A download an interrupted worker verified, if it can still be used as is.

        Returns the verified result and, when the object is already at its key,
        the stored facts. Either the object at the key reads back with the
        recorded size and both checksums, or the staged file does: both make a
        new download unnecessary. Anything less and the caller downloads again.
        """
        noted = record.verified
        if noted is None:
            return None, None
        staged = self._noted_staging(record, noted)
        result = replace(noted.download, path=staged)
        if await asyncio.to_thread(holds_exactly, self.backend, record.key, result):
            log.info("resuming %s: already stored by an interrupted run", record.key)
            return result, StoredSegment.of_download(result, key=record.key, archived_at=utcnow())
        if staged is not None and staged.exists() and result.crc32c and result.sha256:
            # Read and hashed again: its writer is gone, so only its bytes can prove it.
            result.seal = await asyncio.to_thread(
                reseal_if_same,
                staged,
                size=result.size,
                crc32c=result.crc32c,
                sha256=result.sha256,
            )
            if result.seal is not None:
                log.info("resuming %s from its verified staged file", record.key)
                return result, None
            log.warning(
                "staged file of %s no longer matches its checksums; fetching again", record.key
            )
        return None, None

    async def _refuse(
        self, record: SegmentRecord, worker: str, result: DownloadResult, reason: str
    ) -> Outcome:
        kept = await self._quarantine(record, result.path, {**result.as_dict(), "error": reason})
        await self._finish(
            record,
            worker,
            SegmentState.FAILED,
            result=Refusal(quarantine=str(kept) if kept else None, download=result).to_json(),
            error=reason,
        )
        log.error("not archived: %s (%s)", record.key, reason)
        return Outcome(record, "failed", reason=reason, download=result)

    async def settle_unexpected(
        self, record: SegmentRecord, worker: str, exc: BaseException
    ) -> Outcome:
        """After an error no check expected: retry later, or record the segment as failed.

        A segment that keeps failing the same way is not retried forever: after
        ``retry.max_attempts`` tries it is failed with its reason (and listed in
        its manifest's ``failures``), its staged bytes quarantined.
        """
        reason = f"{type(exc).__name__}: {exc}"
        failures = record.failures + 1
        if self.retry is not None and failures < self.retry.max_attempts:
            delay = self.retry.delay(failures)
            log.error(
                "%s: attempt %d of %d failed (%s); next try in %.0f s",
                record.key,
                failures,
                self.retry.max_attempts,
                reason,
                delay,
            )
            await asyncio.to_thread(
                self.journal.retry_later, record.segment_id, worker, delay=delay, error=reason
            )
            return Outcome(record, "retrying", reason=reason)
        if failures > 1:
            reason = f"gave up after {failures} attempts: {reason}"
        staged = next(iter(sorted(self.staging.glob(f"{record.segment_id}.*.part"))), None)
        kept = await self._quarantine(record, staged, {"error": reason})
        await self._finish(
            record,
            worker,
            SegmentState.FAILED,
            result=Refusal(quarantine=str(kept) if kept else None).to_json(),
            error=reason,
        )
        log.error("not archived: %s (%s)", record.key, reason)
        return Outcome(record, "failed", reason=reason)

    async def _quarantine(
        self, record: SegmentRecord, staged: Path | None, reason: dict[str, Any]
    ) -> Path | None:
        """Keep the refused bytes if the quarantine can; its own failure never blocks the verdict."""
        document = {
            "segment_id": record.segment_id,
            "key": record.key,
            "source_url": record.source_url,
            **reason,
        }
        try:
            return await asyncio.to_thread(
                self.quarantine.keep, record.segment_id, staged, document
            )
        except OSError as exc:
            log.error("cannot quarantine %s: %s", record.key, exc)
            if staged is not None:
                staged.unlink(missing_ok=True)
            return None

    async def _finish(
        self, record: SegmentRecord, worker: str, state: SegmentState, **facts: Any
    ) -> None:
        """Record a verdict; one reached after the lease was taken over is dropped, and said so."""
        recorded = await asyncio.to_thread(
            self.journal.finish, record.segment_id, worker, state, **facts
        )
        if not recorded:
            log.warning(
                "%s: the lease ran out and another worker took the segment over;"
                " this worker's verdict (%s) is not recorded",
                record.key,
                state.value,
            )


def _staged_name(record: SegmentRecord, worker: str) -> str:
    """A staging file name of this claim alone, so no other claim of the segment can write it.

    ``attempts`` counts claims in the journal and the worker names its
    process, so neither a worker whose lease ran out nor a run on another
    journal sharing the directory ever writes the same file.
    """
    token = hashlib.sha256(f"{worker}:{record.attempts}".encode()).hexdigest()[:12]
    return f"{record.segment_id}.{token}.part"


__all__ = ["Archiver", "Outcome", "RetryPolicy", "RunSummary", "manifest_segment", "summarise"]
