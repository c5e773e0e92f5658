"""Reading archived segments for an export: only what the manifest lists, verified as it streams.

Each segment is opened through the backend (local file, S3 or GCS object) and
handed to FFmpeg as a forward-only stream, so every byte FFmpeg sees passes
through SHA-256 exactly once. When the media is consumed the rest of the object
is drained into the hash and compared with the manifest's: a segment that
differs raises :class:`SegmentCorrupt` naming its key. Everything written from
it up to then sits in a temporary file the caller discards.

MP4 keeps its index wherever the writer put it (often at the end), which a
forward-only stream cannot reach; those segments are first copied to a
temporary file, hashed on the way.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import av
import av.error

from storage_backends import Backend, StorageError

from ..manifest import Segment
from .errors import SegmentCorrupt, SegmentUnreadable

#: Bytes FFmpeg asks for per read: large enough that Python's share of the cost is noise.
READ_SIZE = 1 << 20
_STREAMING_DEMUXERS = {"webm": "matroska", "matroska": "matroska", "mkv": "matroska"}
_SPOOLED_DEMUXERS = {"mp4": "mov", "mov": "mov"}


class _VerifyingStream:
    """A forward-only reader that hashes every byte it hands out (no ``seek``: FFmpeg reads straight through)."""

    def __init__(self, raw: BinaryIO, key: str) -> None:
        self._raw = raw
        self._key = key
        self._hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._raw.read(size)
        except StorageError as exc:
            raise SegmentUnreadable(self._key, f"reading it failed: {exc}") from exc
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> str:
        """Read what FFmpeg left unread; return the SHA-256 of the whole object."""
        while self.read(READ_SIZE):
            pass
        return self._hash.hexdigest()


def _check(segment: Segment, sha256: str, size: int) -> None:
    if sha256 != segment.sha256.lower():
        raise SegmentCorrupt(
            segment.key,
            f"SHA-256 {sha256} does not match the manifest's {segment.sha256} "
            f"({size} bytes read, {segment.size} recorded)",
        )


def unreadable(segment: Segment, exc: Exception) -> SegmentUnreadable:
    """FFmpeg's error about ``segment`` as our own, naming its key."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return SegmentUnreadable(segment.key, f"cannot be read as media ({reason})")


@dataclass
class OpenSegment:
    """A demuxer over one segment; call :meth:`verify` once its packets are consumed."""

    segment: Segment
    container: Any  # av.container.InputContainer
    stream: Any  # the one av stream of the wanted type
    _verify: Any

    def packets(self) -> Iterator[Any]:
        """The wanted stream's packets in file order (no flush packets)."""
        try:
            for packet in self.container.demux(self.stream):
                if packet.size:
                    yield packet
        except av.error.FFmpegError as exc:
            raise unreadable(self.segment, exc) from exc

    def frames(self) -> Iterator[Any]:
        """The wanted stream's decoded frames."""
        try:
            for packet in self.container.demux(self.stream):
                yield from packet.decode()
        except av.error.FFmpegError as exc:
            raise unreadable(self.segment, exc) from exc

    def verify(self) -> None:
        """Raise :class:`SegmentCorrupt` unless the whole object matches its SHA-256."""
        self._verify()


def _pick(container: Any, segment: Segment, media_type: str) -> Any:
    for stream in container.streams:
        if stream.type == media_type:
            return stream
    raise SegmentUnreadable(segment.key, f"has no {media_type} stream")


def _open_container(source: Any, segment: Segment, demuxer: str) -> Any:
    try:
        return av.open(source, mode="r", format=demuxer, buffer_size=READ_SIZE)
    except av.error.FFmpegError as exc:
        raise unreadable(segment, exc) from exc


@contextmanager
def open_segment(
    backend: Backend, segment: Segment, media_type: str, *, temp_dir: Path | None = None
) -> Iterator[OpenSegment]:
    """Open ``segment`` for its ``media_type`` (``audio``/``video``) stream, hashing as it reads."""
    container_name = (segment.container or segment.filename.rsplit(".", 1)[-1]).lower()
    if container_name in _SPOOLED_DEMUXERS:
        with _spooled(backend, segment, temp_dir) as path:
            container = _open_container(os.fspath(path), segment, _SPOOLED_DEMUXERS[container_name])
            try:
                yield OpenSegment(segment, container, _pick(container, segment, media_type), lambda: None)
            finally:
                container.close()
        return
    demuxer = _STREAMING_DEMUXERS.get(container_name, "matroska")
    with ExitStack() as stack:
        try:
            raw = stack.enter_context(backend.open_read(segment.key))
        except StorageError as exc:
            raise SegmentUnreadable(segment.key, f"cannot be opened: {exc}") from exc
        stream = _VerifyingStream(raw, segment.key)
        container = _open_container(stream, segment, demuxer)
        stack.callback(container.close)
        yield OpenSegment(
            segment,
            container,
            _pick(container, segment, media_type),
            lambda: _check(segment, stream.drain(), stream.size),
        )


@contextmanager
def _spooled(backend: Backend, segment: Segment, temp_dir: Path | None) -> Iterator[Path]:
    """A verified local copy of ``segment`` (the file itself on local disk)."""
    in_place = backend.local_path(segment.key)
    handle, name = tempfile.mkstemp(prefix=".export-", suffix=".seg", dir=temp_dir)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                with (
                    open(in_place, "rb") if in_place else backend.open_read(segment.key)
                ) as source:
                    stream = _VerifyingStream(source, segment.key)
                    while chunk := stream.read(READ_SIZE):
                        out.write(chunk)
                    sha256 = stream.drain()
            except (StorageError, OSError) as exc:
                raise SegmentUnreadable(segment.key, f"cannot be read: {exc}") from exc
        _check(segment, sha256, stream.size)
        yield path
    finally:
        path.unlink(missing_ok=True)
