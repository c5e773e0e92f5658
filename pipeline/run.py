"""One batch run: its parts built from a validated config, then sources archived into a summary.

``archive``, ``demo``, ``reconcile`` and ``serve`` (and any process that
archives one claimed segment at a time) build their parts with
:func:`open_run`; ``archive`` and ``demo`` then call :func:`archive_sources`.
Commands only parse options and print what comes back.

::

    summary = archive_sources(config, ["webhooks.jsonl"])

    async with open_run(config) as run:
        outcome = await run.archiver.process(record, worker)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from storage_backends import Backend, BackendConfigError, open_backend

from .errors import ConfigError

if TYPE_CHECKING:  # the config is parsed by the caller; its types are all this module needs
    from .archive import Archiver, Outcome, RetryPolicy, RunSummary
    from .config import Config
    from .download import DownloaderOnDemand, DownloadPolicy
    from .journal import SQLiteJournal
    from .live.reconcile import ReconcileSummary
    from .live.recording_api import RecordingApi

log = logging.getLogger(__name__)


class Progress(Protocol):
    """Something shown while a run works (a progress bar); every method may do nothing."""

    def start(self, total: int) -> None:
        """Work begins on ``total`` segments."""

    def advance(self, outcome: Outcome) -> None:
        """One segment finished (archived, skipped or failed)."""

    def stop(self) -> None:
        """The run ended, normally or not."""


def open_configured_backend(
    config: Config, url: str | None = None, *, clean_leftovers: bool = True
) -> Backend:
    """Open ``url`` (``None``: the configured archive root) with the configured options.

    An empty ``url`` is refused as an empty ``backend.url`` is, never read as "not given":
    an unset variable in ``--backend "$ROOT"`` must not open another archive. Unless ``clean_leftovers`` is false (a read-only use), first remove what
    writes killed midway left there (see ``Backend.clean_leftovers``); a
    failure to clean is logged and never stops the caller.
    """
    try:
        backend = open_backend(config.backend.url if url is None else url, config.backend.options())
    except BackendConfigError as exc:
        raise ConfigError(str(exc)) from None
    if clean_leftovers:
        _clean_leftovers(backend)
    return backend


def _clean_leftovers(backend: Backend) -> None:
    try:
        removed = backend.clean_leftovers()
    except Exception as exc:  # cleaning is a courtesy: whatever fails, the run goes on
        log.warning(
            "could not clean what interrupted writes left in %s (the run goes on): %s",
            backend.url,
            exc,
        )
        return
    if removed:
        log.info("removed %d leftover(s) of interrupted writes from %s", removed, backend.url)


@dataclass(frozen=True, slots=True)
class ArchiveRun:
    """The parts of one run, open together (see :func:`open_run`)."""

    config: Config
    backend: Backend
    journal: SQLiteJournal
    downloader: DownloaderOnDemand
    archiver: Archiver


@asynccontextmanager
async def open_run(
    config: Config,
    *,
    backend: Backend | None = None,
    policy: DownloadPolicy | None = None,
    retry: RetryPolicy | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> AsyncIterator[ArchiveRun]:
    """Open the backend (unless given), the journal, the downloader and the archiver; close them after.

    A ``backend`` passed in stays open: its owner closes it. ``policy``
    replaces the one the config describes (a benchmark's or test's limits);
    ``retry`` bounds how often a failing segment is tried again (``serve``).
    """
    # The archiver loads when a run starts, not with the CLI; the download engine
    # (httpx, PyAV) only when the first segment is fetched.
    from .archive import Archiver
    from .download import DownloaderOnDemand
    from .journal import SQLiteJournal

    owned = backend is None
    backend = backend if backend is not None else open_configured_backend(config)
    try:
        journal = SQLiteJournal(config.state.journal)
        try:
            async with DownloaderOnDemand(policy or config.download) as downloader:
                archiver = Archiver(
                    backend=backend,
                    journal=journal,
                    downloader=downloader,
                    staging=config.state.staging_dir,
                    quarantine_dir=config.state.quarantine_dir,
                    quarantine_max_bytes=config.state.quarantine_max_bytes,
                    retry=retry,
                    on_outcome=on_outcome,
                )
                yield ArchiveRun(config, backend, journal, downloader, archiver)
        finally:
            journal.close()
    finally:
        if owned:
            backend.close()


def archive_sources(
    config: Config, sources: Sequence[str], *, progress: Progress | None = None
) -> RunSummary:
    """Ingest every source, archive every pending segment, update the manifests.

    A bad record is reported in the summary's ``input_errors`` and the others
    go on; the summary counts the segments the sources named (and any an
    interrupted run left).
    """
    import asyncio  # here, not at import: commands that only open a backend start without it

    return asyncio.run(_archive_sources(config, sources, progress))


async def _archive_sources(
    config: Config, sources: Sequence[str], progress: Progress | None
) -> RunSummary:
    from .archive import recheck_done, summarise
    from .errors import InputError
    from .events import OtherEvent
    from .ingest import read_sources

    input_errors: list[str] = []
    ignored: list[str] = []
    touched: set[str] = set()
    on_outcome = progress.advance if progress is not None else None
    async with open_run(config, on_outcome=on_outcome) as run:
        for item in read_sources(list(sources)):
            if isinstance(item, InputError):
                input_errors.append(str(item))
                log.error("%s", item)
                continue
            try:
                event, segment_ids = run.archiver.ingest(
                    item.payload, source=item.source, line=item.line
                )
            except InputError as exc:
                input_errors.append(str(exc))
                log.error("%s", exc)
                continue
            if isinstance(event, OtherEvent):
                ignored.append(f"{item.source}:{item.line}: {event.webhookType}")
                log.warning(
                    "%s:%s: webhook type %r is not a track recording; skipped",
                    item.source,
                    item.line,
                    event.webhookType,
                )
            touched.update(segment_ids)
        # What the journal calls archived must still be in the archive and its manifest.
        recheck_done(run.backend, run.journal, touched)
        run.archiver.expand_pending()
        if progress is not None:
            counts = run.journal.counts()
            progress.start(counts.get("pending", 0) + counts.get("active", 0))
        try:
            outcomes = await run.archiver.run(concurrency=config.download.concurrency)
        finally:
            if progress is not None:
                progress.stop()
        summary = summarise(run.journal, touched, outcomes)
        summary.manifest_failures = run.archiver.manifest_failures
    summary.input_errors = input_errors
    summary.ignored_events = ignored
    return summary


def reconcile_listing(
    config: Config, api: RecordingApi, *, room: str | None, session: str | None
) -> ReconcileSummary:
    """Archive what the listing of one room or session names and the archive lacks."""
    from .live.reconcile import Reconciler

    async def go() -> ReconcileSummary:
        async with open_run(config) as run:
            reconciler = Reconciler(api, run.archiver, concurrency=config.download.concurrency)
            return await reconciler.run(room_id=room, session_id=session)

    import asyncio

    return asyncio.run(go())
