"""The batch run as a library: one construction for every caller, one call for a whole run."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pipeline.archive import RunSummary
from pipeline.config import Config
from pipeline.journal import SegmentState
from pipeline.manifest import read_manifest
from pipeline.run import archive_sources, open_run
from pipeline.standin import Meeting
from tests.fixtures.origin import Origin

from .conftest import serve_meeting, track_webhook, write_jsonl


def _config(root: Path, state: Path, origin: Origin) -> Config:
    return Config().override(
        **{
            "backend.url": str(root),
            "backend.local.fsync": False,
            "download.allowed_origins": [origin.base_url],
            "state.journal": str(state / "journal.sqlite3"),
        }
    )


class Recorded:
    """A progress display that only remembers what it was told."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.advanced: list[str] = []
        self.stopped = False

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, outcome: object) -> None:
        self.advanced.append(getattr(outcome, "state", "?"))

    def stop(self) -> None:
        self.stopped = True


def test_archive_sources_returns_the_runs_typed_summary(
    meeting: Meeting, origin: Origin, tmp_path: Path
) -> None:
    bodies = serve_meeting(origin, meeting)
    source = write_jsonl(tmp_path / "w.jsonl", [*bodies, {"webhookType": 7}])
    config = _config(tmp_path / "archive", tmp_path / "state", origin)
    progress = Recorded()

    summary = archive_sources(config, [str(source)], progress=progress)

    assert isinstance(summary, RunSummary)
    assert (summary.archived, summary.failed) == (len(meeting.segments), 0)
    assert summary.bytes == sum(seg.path.stat().st_size for seg in meeting.segments)
    assert len(summary.input_errors) == 1 and "w.jsonl" in summary.input_errors[0]
    assert progress.total == len(meeting.segments) and progress.stopped
    assert progress.advanced == ["archived"] * len(meeting.segments)

    again = archive_sources(config, [str(source)])
    assert (again.archived, again.skipped) == (0, len(meeting.segments))


def test_open_run_archives_one_claimed_segment_job(
    meeting: Meeting, origin: Origin, tmp_path: Path
) -> None:
    serve_meeting(origin, meeting)
    seg = meeting.segments[0]
    details = [{"filePath": seg.file_path, "fileUrl": origin.base_url + seg.file_path}]
    body = track_webhook(meeting, seg.participant_id, seg.kind, "stopped", details)
    config = _config(tmp_path / "archive", tmp_path / "state", origin)

    async def one_job() -> tuple[str, int | None]:
        async with open_run(config) as run:
            run.archiver.ingest(body, source="job")
            record = run.journal.claim("job-worker", lease_seconds=60)
            assert record is not None
            outcome = await run.archiver.process(record, "job-worker")
            await run.archiver.flush_manifests()
            stored = outcome.stored
            return outcome.state, stored.size if stored else None

    state, size = asyncio.run(one_job())
    assert (state, size) == ("archived", seg.path.stat().st_size)

    async def check() -> None:
        async with open_run(config) as run:
            (done, *_) = run.journal.segments(states=(SegmentState.DONE,))
            assert done.stored is not None and done.stored.size == size
            manifest, _ = read_manifest(run.backend, meeting.session_id)
            assert manifest is not None
            assert [s.key for _, _, s in manifest.segments()] == [done.stored.key]

    asyncio.run(check())
