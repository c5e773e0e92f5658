"""Waiting for queued segments: the archive's manifests are the source of truth.

Before queuing, the manifests of the sessions involved are read once (the
snapshot). A segment already listed there counts as skipped at once. After
queuing, each session's manifest is polled until every segment is listed
(archived) or has a failure newer than the snapshot's (failed). No result
backend is needed, and what is counted is what a reader of the archive sees:
a segment counts only once its manifest entry is merged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from storage_backends import Backend

from ..archive import RunSummary
from ..layout import manifest_key
from ..manifest import Manifest, read_manifest
from .messages import SegmentJob

POLL_INTERVAL = 0.5

_Ident = tuple[str, str, str]  # participantId, kind, sourceUrl


def _ident(job: SegmentJob) -> _Ident:
    return (job.participant_id, job.kind, job.source_url)


@dataclass
class _Seen:
    archived: dict[_Ident, int] = field(default_factory=dict)  # size of the listed file
    failures: dict[_Ident, set[tuple[str, str]]] = field(default_factory=dict)


def _seen(manifest: Manifest | None) -> _Seen:
    seen = _Seen()
    if manifest is None:
        return seen
    for pid, kind, segment in manifest.segments():
        for url in segment.source_urls():
            seen.archived[(pid, kind, url)] = segment.size
    for failure in manifest.failures:
        if failure.sourceUrl is not None:
            ident = (failure.participantId, failure.kind, failure.sourceUrl)
            seen.failures.setdefault(ident, set()).add((failure.reason, failure.at.isoformat()))
    return seen


class BatchWaiter:
    """Counts a batch's segments as their outcomes appear in the manifests."""

    def __init__(self, backend: Backend, jobs: list[SegmentJob]) -> None:
        self.backend = backend
        self.jobs = {_ident(job): job for job in jobs}
        self.summary = RunSummary()
        self._before: dict[str, _Seen] = {}
        self._open: dict[str, set[_Ident]] = {}
        self._versions: dict[str, str | None] = {}

    def snapshot(self) -> int:
        """Read the manifests before queuing; return how many segments were already archived."""
        for ident, job in self.jobs.items():
            self._open.setdefault(job.session_id, set()).add(ident)
        for session_id in list(self._open):
            manifest, self._versions[session_id] = read_manifest(self.backend, session_id)
            before = self._before[session_id] = _seen(manifest)
            for ident in list(self._open[session_id]):
                if ident in before.archived:
                    self.summary.skipped += 1
                    self._open[session_id].discard(ident)
        return self.summary.skipped

    @property
    def remaining(self) -> int:
        """Segments whose outcome is not in their manifest yet."""
        return sum(len(idents) for idents in self._open.values())

    def poll(self, on_done: Callable[[int], None] | None = None) -> int:
        """Read the manifests of unfinished sessions once; return how many segments finished."""
        finished = 0
        for session_id, idents in self._open.items():
            if not idents:
                continue
            stat = self.backend.stat(manifest_key(session_id))
            if stat is None or stat.version == self._versions.get(session_id):
                continue  # unchanged since the last look
            manifest, self._versions[session_id] = read_manifest(self.backend, session_id)
            now = _seen(manifest)
            before = self._before[session_id]
            for ident in list(idents):
                if ident in now.archived:
                    self.summary.archived += 1
                    self.summary.bytes += now.archived[ident]
                    size = now.archived[ident]
                elif now.failures.get(ident, set()) - before.failures.get(ident, set()):
                    reasons = now.failures[ident] - before.failures.get(ident, set())
                    self._failed(self.jobs[ident], sorted(reasons)[-1][0])
                    size = 0
                else:
                    continue
                idents.discard(ident)
                finished += 1
                if on_done is not None:
                    on_done(size)
        return finished

    def _failed(self, job: SegmentJob, reason: str) -> None:
        self.summary.failed += 1
        self.summary.failures.append(
            {
                "sessionId": job.session_id,
                "participantId": job.participant_id,
                "kind": job.kind,
                "sourceUrl": job.source_url,
                "reason": reason,
            }
        )

    def wait(
        self,
        on_done: Callable[[int], None] | None = None,
        interval: float = POLL_INTERVAL,
        *,
        idle_after: float | None = None,
        on_idle: Callable[[int], None] | None = None,
    ) -> RunSummary:
        """Poll until every segment finished; return the summary.

        When nothing finished for ``idle_after`` seconds, ``on_idle`` is called once
        with the number of segments remaining (again after the next idle stretch).
        """
        last_progress = time.monotonic()
        while self.remaining:
            if self.poll(on_done):
                last_progress = time.monotonic()
                continue
            if on_idle and idle_after and time.monotonic() - last_progress >= idle_after:
                on_idle(self.remaining)
                last_progress = time.monotonic()
            time.sleep(interval)
        return self.summary
