"""Test archives written through the real backend API, and a proxy backend for fault injection."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pipeline.layout import segment_key
from pipeline.manifest import Failure, ManifestUpdate, Segment, update_manifest
from storage_backends import Backend, FilePut, ObjectStat, PutRequest, hash_bytes


def put_segment(
    backend: Backend,
    tmp: Path,
    session: str,
    participant: str,
    kind: str,
    index: int,
    data: bytes,
    *,
    started_ms: int,
    duration: float = 1.0,
) -> tuple[str, str, Segment]:
    """Store one segment as the archiver would and return its manifest entry."""
    filename = f"track_recording_{participant}_{kind}_{started_ms}.webm"
    key = segment_key(session, participant, kind, filename)
    crc, sha = hash_bytes(data)
    path = tmp / f"seg-{index}-{started_ms}"
    path.write_bytes(data)
    backend.put_file(key, path, crc32c=crc, sha256=sha, content_type="video/webm")
    path.unlink()
    segment = Segment(
        key=key,
        filename=filename,
        sourceUrl=f"https://cdn.example/{session}/{participant}/{kind}/{filename}",
        size=len(data),
        sha256=sha,
        crc32c=crc,
        durationSeconds=duration,
        container="webm",
        startedAtMs=started_ms,
        archivedAt=datetime.now(UTC),
    )
    return participant, kind, segment


def build_session(
    backend: Backend,
    tmp: Path,
    session: str,
    layout: Mapping[tuple[str, str], int],
    *,
    start_ms: int = 1_780_000_000_000,
    meeting: str | None = "room-1",
    failures: int = 0,
    payload: Callable[[str, int], bytes] | None = None,
) -> list[str]:
    """Write ``layout[(participant, kind)]`` segments per pair plus the manifest; return keys."""
    make = payload or (lambda key, i: f"{key}#{i}".encode() * 50)
    entries = []
    count = 0
    for (participant, kind), n in layout.items():
        for i in range(n):
            started = start_ms + count * 60_000
            data = make(f"{session}/{participant}/{kind}", i)
            entries.append(
                put_segment(
                    backend, tmp, session, participant, kind, count, data, started_ms=started
                )
            )
            count += 1
    failure_list = [
        Failure(
            participantId="ghost", kind="audio", reason=f"download failed {i}", at=datetime.now(UTC)
        )
        for i in range(failures)
    ]
    update_manifest(
        backend,
        ManifestUpdate(
            session_id=session, meeting_id=meeting, segments=entries, failures=failure_list
        ),
    )
    return [seg.key for _, _, seg in entries]


def contents(backend: Backend) -> dict[str, bytes]:
    """Every object's bytes, by key."""
    return {stat.key: backend.get_bytes(stat.key)[0] for stat in backend.list()}


class ProxyBackend(Backend):
    """Forwards to a real backend; tests override one method to inject a fault or count calls."""

    scheme = "proxy"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    @property
    def url(self) -> str:
        return self.inner.url

    # The contract's checks run in ``Backend``; these count and forward the checked calls.

    def _put_file(self, path: Path, put: FilePut) -> ObjectStat:
        self._count("put_file")
        return self.inner.put_file(
            put.key,
            path,
            crc32c=put.crc32c,
            sha256=put.sha256,
            content_type=put.content_type,
            metadata=put.metadata,
            if_absent=put.if_absent,
        )

    def _put_bytes(self, data: bytes, put: PutRequest) -> ObjectStat:
        self._count("put_bytes")
        assert put.content_type is not None  # put_bytes always names one
        return self.inner.put_bytes(
            put.key,
            data,
            content_type=put.content_type,
            metadata=put.metadata,
            if_absent=put.if_absent,
            if_version=put.if_version,
        )

    def _delete(self, key: str) -> None:
        self._count("delete")
        self.inner.delete(key)

    def _stat(self, key: str) -> ObjectStat | None:
        self._count("stat")
        return self.inner.stat(key)

    def _list(self, prefix: str) -> Iterator[ObjectStat]:
        self._count("list")
        return self.inner.list(prefix)

    def _open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        self._count("open_read")
        return self.inner.open_read(key)

    def _get_file(self, key: str, dest: Path) -> ObjectStat:
        self._count("get_file")
        return self.inner.get_file(key, dest)

    def _get_bytes(self, key: str, *, max_size: int) -> tuple[bytes, ObjectStat]:
        self._count("get_bytes")
        return self.inner.get_bytes(key, max_size=max_size)

    def _copy_within(
        self, source: Backend, source_key: str, key: str, *, if_absent: bool
    ) -> ObjectStat | None:
        self._count("copy_within")
        real = source.inner if isinstance(source, ProxyBackend) else source
        return self.inner.copy_within(real, source_key, key, if_absent=if_absent)

    def reads(self) -> int:
        """Requests that read or describe single objects."""
        return sum(self.calls.get(n, 0) for n in ("stat", "open_read", "get_file", "get_bytes"))
