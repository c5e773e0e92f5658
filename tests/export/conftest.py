"""A synthetic session with an exactly known timeline, archived on a real backend.

Session time zero is ``T0``. Seconds on the session timeline:

* alice microphone: three segments, [0, 2), [3, 4), [5.5, 7): gaps of 1 s and 1.5 s;
* alice camera: starts 700 ms after her microphone, [0.7, 2.7) at 160x120, then
  [3.7, 5.0) at 320x240 (the resolution changes between segments);
* alice screen share in the middle: video and audio [2, 4), 320x180;
* bob joins late: microphone and camera [4, 7).

The session is 7 s long. Segments are real WebM made with PyAV, named like the
service's files (epoch milliseconds), stored through the backend and listed in
a manifest exactly as the archiver writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.layout import segment_key
from pipeline.manifest import ManifestUpdate, Segment, Stream, update_manifest
from pipeline.media import inspect_media, synth
from storage_backends import Backend, hash_file
from tests.fixtures.backends import StorageTarget

SESSION = "sess-export-1"
T0 = datetime(2026, 3, 4, 10, 0, 0, tzinfo=UTC)
SESSION_SECONDS = 7.0
FPS = 15

#: (participant, kind, start s, length s, width, height) for every segment.
LAYOUT: tuple[tuple[str, str, float, float, int, int], ...] = (
    ("alice", "audio", 0.0, 2.0, 0, 0),
    ("alice", "audio", 3.0, 1.0, 0, 0),
    ("alice", "audio", 5.5, 1.5, 0, 0),
    ("alice", "video", 0.7, 2.0, 160, 120),
    ("alice", "video", 3.7, 1.3, 320, 240),
    ("alice", "screen_video", 2.0, 2.0, 320, 180),
    ("alice", "screen_audio", 2.0, 2.0, 0, 0),
    ("bob", "audio", 4.0, 3.0, 0, 0),
    ("bob", "video", 4.0, 3.0, 160, 120),
)


@dataclass(frozen=True)
class SegmentFile:
    """One generated segment and its place on the timeline."""

    participant_id: str
    kind: str
    start: float
    seconds: float
    path: Path

    @property
    def filename(self) -> str:
        """The service-style name."""
        return self.path.name


@pytest.fixture(scope="session")
def session_files(tmp_path_factory: pytest.TempPathFactory) -> list[SegmentFile]:
    """Every segment of the synthetic session, generated once per test run."""
    root = tmp_path_factory.mktemp("export-session")
    files = []
    for index, (pid, kind, start, seconds, width, height) in enumerate(LAYOUT):
        at = T0 + timedelta(seconds=start)
        epoch_ms = int(at.timestamp() * 1000)
        path = root / f"track_recording_{pid}_{kind}_{epoch_ms}.webm"
        if width:
            synth.make_webm_video(path, seconds, width=width, height=height, fps=FPS, started_at=at)
        else:
            synth.make_webm_audio(path, seconds, tone_hz=330.0 + 110 * index, started_at=at)
        files.append(SegmentFile(pid, kind, start, seconds, path))
    return files


def archive_files(backend: Backend, session_id: str, files: list[SegmentFile]) -> None:
    """Store each file at its segment key and list it in the manifest, as the archiver does."""
    update = ManifestUpdate(session_id=session_id, meeting_id="mtg-export")
    for arrival, seg in enumerate(files, start=1):
        key = segment_key(session_id, seg.participant_id, seg.kind, seg.filename)
        crc32c, sha256, size = hash_file(seg.path)
        if backend.stat(key) is None:
            backend.put_file(key, seg.path, crc32c=crc32c, sha256=sha256, if_absent=True)
        report = inspect_media(seg.path, kind=seg.kind)
        assert report.ok, report.failure
        epoch_ms = int(seg.filename.rsplit("_", 1)[1].split(".")[0])
        update.segments.append(
            (
                seg.participant_id,
                seg.kind,
                Segment(
                    key=key,
                    filename=seg.filename,
                    sourceUrl=f"https://cdn.example/{seg.filename}",
                    size=size,
                    sha256=sha256,
                    crc32c=crc32c,
                    durationSeconds=report.duration_seconds,
                    container=seg.path.suffix.lstrip("."),
                    streams=[Stream(type=s.type, codec=s.codec) for s in report.streams],
                    startedAt=datetime.fromtimestamp(epoch_ms / 1000, UTC),
                    startedAtMs=epoch_ms,
                    archivedAt=T0 + timedelta(hours=1),
                    arrival=arrival,
                ),
            )
        )
    update_manifest(backend, update)


@pytest.fixture
def archived(
    make_storage_target: Callable[[str], StorageTarget], session_files: list[SegmentFile]
) -> Iterator[Callable[[str], tuple[StorageTarget, Backend]]]:
    """Factory: ``archived("local")`` gives a fresh root of that kind holding the session."""
    opened: list[Backend] = []

    def make(kind: str) -> tuple[StorageTarget, Backend]:
        target = make_storage_target(kind)
        backend = target.open()
        opened.append(backend)
        archive_files(backend, SESSION, session_files)
        return target, backend

    yield make
    for backend in opened:
        backend.close()
