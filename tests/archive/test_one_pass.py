"""One pass over the bytes: a verified download becomes the archived object without a copy.

The store step trusts the checksums taken while the bytes arrived; what it
must still refuse is a staged file that changed after that. The change is
injected at the project's own boundary, between the download engine handing
back its verified result and the store step (a real local disk, a real origin),
since no outside timing can land a write in that gap reliably.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Config
from pipeline.download import Downloader, DownloadResult
from pipeline.layout import segment_key
from pipeline.run import open_run
from pipeline.standin import Meeting
from tests.fixtures.origin import Origin
from tests.safety.forge import same_crc32c

from .conftest import serve_meeting, track_webhook


def _config(root: Path, state: Path, origin: Origin) -> Config:
    return Config().override(
        **{
            "backend.url": str(root),
            "download.allowed_origins": [origin.base_url],
            "state.journal": str(state / "journal.sqlite3"),
        }
    )


class ChangesStagedFile:
    """The real downloader, with the staged file changed right after a verified fetch."""

    def __init__(self, inner: Downloader, change: Any) -> None:
        self.inner = inner
        self.change = change
        self.inodes: list[int] = []

    async def fetch(self, url: str, dest: Path, **kwargs: Any) -> DownloadResult:
        result = await self.inner.fetch(url, dest, **kwargs)
        assert result.ok and result.path is not None
        self.inodes.append(os.stat(result.path).st_ino)
        self.change(result.path)
        return result


def _archive_one(
    meeting: Meeting, origin: Origin, tmp_path: Path, change: Any
) -> tuple[Any, ChangesStagedFile, Path, str]:
    serve_meeting(origin, meeting)
    seg = meeting.segments[0]
    details = [{"filePath": seg.file_path, "fileUrl": origin.base_url + seg.file_path}]
    body = track_webhook(meeting, seg.participant_id, seg.kind, "stopped", details)
    config = _config(tmp_path / "archive", tmp_path / "state", origin)
    key = segment_key(meeting.session_id, seg.participant_id, seg.kind, seg.filename)

    async def go() -> tuple[Any, ChangesStagedFile]:
        async with open_run(config) as run:
            spy = ChangesStagedFile(run.archiver.downloader, change)
            run.archiver.downloader = spy  # type: ignore[assignment]
            run.archiver.ingest(body, source="w")
            (outcome,) = await run.archiver.run(concurrency=1)
            return outcome, spy

    outcome, spy = asyncio.run(go())
    return outcome, spy, seg.path, key


def test_the_verified_staged_file_itself_becomes_the_archived_object(
    meeting: Meeting, origin: Origin, tmp_path: Path
) -> None:
    outcome, spy, source, key = _archive_one(meeting, origin, tmp_path, lambda path: None)
    assert outcome.state == "archived"
    stored = tmp_path / "archive" / key
    assert stored.read_bytes() == source.read_bytes()
    assert os.stat(stored).st_ino == spy.inodes[0]  # linked, not copied
    assert os.stat(stored).st_nlink == 1  # and no staging name left beside it


@pytest.mark.parametrize(
    "change",
    [
        lambda path: path.write_bytes(same_crc32c(path.read_bytes(), at=100)),
        lambda path: os.truncate(path, path.stat().st_size - 1),
    ],
    ids=["same-size-and-crc32c", "truncated"],
)
def test_a_staged_file_changed_after_verification_is_refused(
    change: Any, meeting: Meeting, origin: Origin, tmp_path: Path
) -> None:
    outcome, _, _, key = _archive_one(meeting, origin, tmp_path, change)
    assert outcome.state == "failed"
    assert "changed after its checksums were computed" in outcome.reason
    assert not (tmp_path / "archive" / key).exists()
    (reason,) = (tmp_path / "state" / "journal.sqlite3.d" / "quarantine").glob("*.reason.json")
    assert json.loads(reason.read_text())["staged_bytes"]  # the changed bytes kept for a look
