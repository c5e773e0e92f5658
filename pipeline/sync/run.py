"""The sync job: plan, copy segments and each session's manifest, then (optionally) delete.

Order is what keeps the destination readable at every instant: a session's
manifest is written only after every segment it names is at the destination
with the content recorded for it, and deletions remove a manifest before the
segments it names. A session's manifest starts as soon as that session's own
copies are done, not after the whole run's (one that names another session's
objects waits for those too). A segment that fails its proof (see
``copy.py``) or was refused while planning fails by its key and holds its
session's manifest back. Each run starts from fresh listings, so a rerun
after an interruption copies only what is still missing.

All of it runs on one pool (``schedule.py``), with the run's views of the two
roots (``Backend.run_view``), so directories are checked and made once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from storage_backends.base import Backend, ObjectStat, roots_overlap
from storage_backends.errors import ObjectNotFound, PreconditionFailed, StorageError

from ..errors import ConfigError, TrackArchiveError
from ..scratch import ScratchDir
from .copy import copy_object, holds_recorded
from .digest import Digest
from .manifests import Relation, listed_keys, parse, relation, write_manifest
from .plan import Action, Listing, Plan, Step, build_plan, read_small, session_of
from .report import Outcome, SyncItem, SyncProgress, SyncReport
from .schedule import Outcomes, Scheduler, Work, batches

DEFAULT_CONCURRENCY = 8
#: Copies planned segments elsewhere and yields each one's outcome as it finishes.
Copier = Callable[[list[Step]], Iterable[tuple[Step, SyncItem]]]
#: What a failed copy or delete may raise; anything else is a bug or an interruption.
_EXPECTED_ERRORS = (StorageError, TrackArchiveError, OSError)


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncOptions:
    """How a sync behaves; the defaults copy everything missing and change nothing else."""

    dry_run: bool = False
    #: Session IDs (as in the webhooks) to limit the sync to; empty means all.
    sessions: tuple[str, ...] = ()
    delete: bool = False
    overwrite: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    #: Where streamed copies are staged; the system temp directory when ``None``.
    temp_dir: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.concurrency, bool) or self.concurrency < 1:
            raise ConfigError(f"sync concurrency must be at least 1, got {self.concurrency!r}")


class _Job:
    """One run's state: the plan, the pool and the report being filled.

    Outcomes are recorded in the calling thread only; workers read ``present``,
    ``bad_sessions`` and ``pending`` of sessions whose copies are all recorded.
    """

    def __init__(
        self, source: Backend, dest: Backend, options: SyncOptions, progress: SyncProgress
    ) -> None:
        self.source, self.dest, self.options, self.progress = source, dest, options, progress
        self.report = SyncReport(dry_run=options.dry_run)
        self.scheduler = Scheduler(_workers(source, dest, options.concurrency))
        #: Keys the destination holds with the source's content (skipped or copied).
        self.present: set[str] = set()
        #: Sessions whose manifest stays as it was at the destination.
        self.manifest_kept: set[str] = set()
        self.bad_sessions: set[str] = set()
        #: Copies not recorded yet, by session (only sessions with copies).
        self.pending: dict[str, int] = {}
        #: Manifests to write once their session's copies are recorded.
        self._due: dict[str, Step] = {}
        self._manifest_work: Work | None = None
        #: Manifests that named another session's objects while those were still copying.
        self._deferred: list[Step] = []

    def record(self, step: Step, item: SyncItem) -> None:
        self.report.items.append(item)
        if item.outcome in (Outcome.COPIED, Outcome.SKIPPED) and not step.is_manifest:
            self.present.add(step.key)
        if item.outcome in (Outcome.FAILED, Outcome.CONFLICT) and not step.is_manifest:
            self.bad_sessions.add(step.session)
        self.progress.advance(item)
        if not step.is_manifest and step.action in (Action.COPY, Action.REPLACE):
            left = self.pending[step.session] = self.pending[step.session] - 1
            if left == 0:
                self._start_manifest(step.session)

    def expect(self, copies: list[Step], manifests: list[Step], work: Work) -> None:
        """Note the copies each session waits for; start manifests that wait for none."""
        for step in copies:
            self.pending[step.session] = self.pending.get(step.session, 0) + 1
        self._manifest_work = work
        self._due = {step.session: step for step in manifests}
        for session in [s for s in self._due if not self.pending.get(s)]:
            self._start_manifest(session)

    def _start_manifest(self, session: str) -> None:
        step = self._due.pop(session, None)
        if step is not None and self._manifest_work is not None:
            self.scheduler.submit([step], self._manifest_work)

    def take(self, outcomes: Outcomes) -> None:
        """Record a finished batch; a step that must wait is kept for ``finish``."""
        for step, item in outcomes:
            if item is None:
                self._deferred.append(step)
            else:
                self.record(step, item)

    def drain(self, *, block: bool = True) -> None:
        """Record finished batches until none is running (or, unblocked, none is finished)."""
        while (outcomes := self.scheduler.collect(block=block)) is not None:
            self.take(outcomes)

    def finish(self) -> None:
        """Run everything still queued, then the manifests that had to wait for other sessions."""
        self.drain()
        deferred, self._deferred = self._deferred, []
        if deferred and self._manifest_work is not None:
            self.run_all(deferred, self._manifest_work)

    def run_all(self, steps: list[Step], work: Work) -> None:
        """Run ``work`` on every step in the pool and record each outcome."""
        self.scheduler.queue(batches(steps, self.scheduler.workers), work)
        self.drain()
        # Only a manifest waits, and only for copies, which are all recorded by now.
        assert not self._deferred, "a step waited with nothing left to wait for"


def _workers(source: Backend, dest: Backend, concurrency: int) -> int:
    """Threads for the run: ``concurrency``, or one per CPU between two local roots.

    A copy from disk to disk never waits on a network: it hashes and writes as
    fast as a core allows, so threads beyond the cores only take turns at the
    interpreter lock (each turn a futex call) without copying any faster.
    """
    if source.scheme == dest.scheme == "file":
        return max(1, min(concurrency, os.cpu_count() or 1))
    return concurrency


def _item(step: Step, outcome: Outcome, reason: str | None = None) -> SyncItem:
    return SyncItem(step.key, outcome, step.size, reason or step.reason)


def _failure(step: Step, exc: BaseException) -> SyncItem:
    return SyncItem(step.key, Outcome.FAILED, step.size, f"{type(exc).__name__}: {exc}")


def copy_one(
    source: Backend,
    dest: Backend,
    key: str,
    *,
    expected: Digest | None,
    replace: bool,
    size: int = 0,
    source_stat: ObjectStat | None = None,
    temp_dir: Path | None = None,
) -> SyncItem:
    """Copy one planned segment and re-prove it; the outcome as the sync report records it."""
    try:
        copied = copy_object(
            source,
            dest,
            key,
            source_stat=source_stat,
            expected=expected,
            replace=replace,
            temp_dir=temp_dir,
        )
    except PreconditionFailed:
        try:
            found = holds_recorded(dest, key, expected)
        except _EXPECTED_ERRORS as exc:
            return SyncItem(key, Outcome.FAILED, size, f"{type(exc).__name__}: {exc}")
        if found is None:
            return SyncItem(
                key, Outcome.CONFLICT, size, "an object appeared at the destination meanwhile"
            )
        # An earlier attempt of this copy (a redelivered task) or another run stored it.
        already = "already at the destination with the recorded content"
        return SyncItem(key, Outcome.COPIED, found.digest.size, already)
    except _EXPECTED_ERRORS as exc:
        return SyncItem(key, Outcome.FAILED, size, f"{type(exc).__name__}: {exc}")
    reason = "replaced" if replace else None
    return SyncItem(key, Outcome.COPIED, copied.digest.size, reason, copied.server_side)


def _copy_segment(job: _Job, step: Step) -> SyncItem:
    replace = step.action is Action.REPLACE
    if job.options.dry_run:
        return _item(step, Outcome.COPIED, "would replace" if replace else "would copy")
    return copy_one(
        job.source,
        job.dest,
        step.key,
        expected=step.expected,
        replace=replace,
        size=step.size,
        source_stat=step.source,
        temp_dir=job.options.temp_dir,
    )


def _segment_step(job: _Job, step: Step) -> SyncItem:
    if step.action in (Action.COPY, Action.REPLACE):
        return _copy_segment(job, step)
    if step.action is Action.SKIP:
        return _item(step, Outcome.SKIPPED)
    if step.action is Action.CONFLICT:
        return _item(step, Outcome.CONFLICT)
    if step.action is Action.REFUSE:
        return _item(step, Outcome.FAILED)
    return _item(step, Outcome.KEPT, "only at the destination")


def _manifest_bytes(listing: Listing, step: Step) -> tuple[bytes, ObjectStat] | None:
    return listing.manifests.get(step.session) or read_small(listing.backend, step.key)


def _manifest_step(job: _Job, step: Step, plan: Plan) -> SyncItem | None:
    """Copy, update or hold back one session manifest (its session's copies are done).

    ``None`` when it names objects of sessions still copying: it runs again later.
    """
    if step.action is Action.SKIP:
        return _item(step, Outcome.SKIPPED)
    if step.session in job.bad_sessions:
        job.manifest_kept.add(step.session)
        return _item(step, Outcome.FAILED, "held back: some of its segments were not copied")
    found = _manifest_bytes(plan.source, step)
    if found is None:
        job.manifest_kept.add(step.session)
        return _item(step, Outcome.FAILED, "vanished from the source during the sync")
    data, _ = found
    # The plan parsed the manifests it read: only one read again now is parsed again.
    if step.session in plan.source.named and plan.source.manifests.get(step.session) is found:
        named = plan.source.named[step.session]
    else:
        named = listed_keys(data)
    if named is None:
        # Never copied: it would pass no check of what it names, and --overwrite would put it
        # over a good one.
        job.manifest_kept.add(step.session)
        return _item(step, Outcome.FAILED, "the source manifest is not a valid manifest")
    # Which sessions still copy is read before what is present: a session seen
    # finished here had every outcome recorded before ``present`` is read.
    copying = {session for session, left in list(job.pending.items()) if left}
    absent = [k for k in named if k not in plan.source.stats]
    missing = [k for k in named if k not in job.present]
    if any(session_of(k) in copying for k in missing):
        return None
    if absent or missing:
        job.manifest_kept.add(step.session)
        where, keys = ("source", absent) if absent else ("destination", missing)
        reason = f"held back: names {len(keys)} object(s) the {where} lacks, e.g. {keys[0]!r}"
        return _item(step, Outcome.FAILED, reason)
    replace_version: str | None = None
    verb = "copy"
    if step.action is Action.REVIEW:
        current = _manifest_bytes(plan.dest, step)
        if current is not None:
            dst_data, dst_stat = current
            related = relation(data, dst_data)
            if related is Relation.CONTAINED:
                job.manifest_kept.add(step.session)
                return _item(step, Outcome.SKIPPED, "destination already holds every entry")
            if related is Relation.DIVERGED and not job.options.overwrite:
                job.manifest_kept.add(step.session)
                why = (
                    "the destination manifest is not a valid manifest"
                    if parse(dst_data) is None
                    else "manifests diverged (each has entries the other lacks)"
                )
                return _item(step, Outcome.CONFLICT, why)
            replace_version, verb = dst_stat.version, "update"
            if replace_version is None:
                return _item(
                    step, Outcome.FAILED, "destination gives no version to replace it safely"
                )
    if job.options.dry_run:
        return SyncItem(step.key, Outcome.COPIED, len(data), f"would {verb}")
    try:
        write_manifest(
            job.dest, step.key, data, replace_version=replace_version, temp_dir=job.options.temp_dir
        )
    except PreconditionFailed:
        job.manifest_kept.add(step.session)
        return _item(step, Outcome.CONFLICT, "the destination manifest changed meanwhile")
    except _EXPECTED_ERRORS as exc:
        job.manifest_kept.add(step.session)
        return _failure(step, exc)
    return SyncItem(step.key, Outcome.COPIED, len(data), "updated" if replace_version else None)


def _delete_step(job: _Job, step: Step) -> SyncItem:
    if not step.is_manifest and step.session in job.manifest_kept:
        return _item(step, Outcome.KEPT, "kept: the destination manifest may still name it")
    if job.options.dry_run:
        return _item(step, Outcome.DELETED, "would delete")
    try:
        job.dest.delete(step.key)
    except ObjectNotFound:
        pass  # already gone: the goal is reached
    except _EXPECTED_ERRORS as exc:
        if step.is_manifest:
            job.manifest_kept.add(step.session)
        return _failure(step, exc)
    return _item(step, Outcome.DELETED)


def sync(
    source: Backend,
    dest: Backend,
    options: SyncOptions | None = None,
    progress: SyncProgress | None = None,
    copier: Copier | None = None,
) -> SyncReport:
    """Make ``dest`` hold ``source``'s objects, verified; see ``SyncOptions``.

    ``copier`` performs the segment copies elsewhere (``sync --broker``: on the
    workers), yielding each step's outcome; manifests and deletions stay here.

    Raises only for problems with the whole run: roots that overlap
    (``ConfigError``, before anything is copied), a listing that fails;
    per-object problems are reported in the returned ``SyncReport``.
    """
    options = options or SyncOptions()
    if roots_overlap(source, dest):
        # Copying a root into itself would copy the copy again on every run, and with
        # --delete one side's listing would name the other's objects.
        same = source.location == dest.location
        raise ConfigError(
            f"cannot sync {source.url} to {dest.url}: "
            + ("they are the same archive root" if same else "one root lies inside the other")
        )
    # The run's own directory for streamed copies: one a killed run left is removed by
    # the next (see ``pipeline.scratch``).
    with ScratchDir(options.temp_dir, "sync") as scratch:
        return _run(source, dest, dataclasses.replace(options, temp_dir=scratch), progress, copier)


def _run(
    source: Backend,
    dest: Backend,
    options: SyncOptions,
    progress: SyncProgress | None,
    copier: Copier | None,
) -> SyncReport:
    job = _Job(source.run_view(), dest.run_view(), options, progress or SyncProgress())
    try:
        plan = build_plan(
            job.source,
            job.dest,
            sessions=options.sessions,
            overwrite=options.overwrite,
            delete=options.delete,
            pool=job.scheduler.pool,
        )
        doomed = plan.of(Action.DELETE)
        if doomed and not plan.source.stats:
            # An empty source is far more often a mistyped URL (a local path that does not
            # exist opens as an empty root) than an archive meant to be emptied.
            raise ConfigError(
                f"the source {source.url} holds nothing"
                + (" of the sessions given" if options.sessions else "")
                + f": --delete would delete all {len(doomed)} object(s) at {dest.url};"
                " nothing was changed (check the source URL)"
            )
        transfers = plan.of(Action.COPY, Action.REPLACE, Action.REVIEW)
        job.progress.planned(len(plan.steps), sum(s.size for s in transfers))

        segments = [s for s in plan.steps if not s.is_manifest and s.action is not Action.DELETE]
        # Only copies touch a backend; the rest are recorded without a trip through the pool.
        copies = [s for s in segments if s.action in (Action.COPY, Action.REPLACE)]
        for step in segments:
            if step.action not in (Action.COPY, Action.REPLACE):
                job.record(step, _segment_step(job, step))
        manifests = [s for s in plan.steps if s.is_manifest]
        for step in manifests:
            if step.action is Action.REFUSE:
                job.manifest_kept.add(step.session)
                job.record(step, _item(step, Outcome.FAILED))
            elif step.action is Action.CONFLICT or step.action is Action.KEEP:
                job.manifest_kept.add(step.session)
                outcome = Outcome.CONFLICT if step.action is Action.CONFLICT else Outcome.KEPT
                job.record(step, _item(step, outcome))
            elif step.action is Action.SKIP:
                job.record(step, _item(step, Outcome.SKIPPED))
        live = [s for s in manifests if s.action in (Action.COPY, Action.REPLACE, Action.REVIEW)]
        job.expect(copies, live, lambda s: _manifest_step(job, s, plan))

        if copier is not None and copies and not options.dry_run:
            for step, item in copier(copies):
                job.record(step, item)
                job.drain(block=False)
        else:
            job.scheduler.queue(
                batches(copies, options.concurrency), lambda s: _segment_step(job, s)
            )
        job.finish()

        # A manifest goes before the segments it names.
        job.run_all([s for s in doomed if s.is_manifest], lambda s: _delete_step(job, s))
        job.run_all([s for s in doomed if not s.is_manifest], lambda s: _delete_step(job, s))
    finally:
        job.scheduler.shutdown()
    job.report.items.sort(key=lambda item: item.key)
    return job.report
