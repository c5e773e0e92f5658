"""Copying one object between backends, verified end to end.

The source's checksums travel with the bytes: a streamed copy hashes what it
reads, checks it against what the source recorded, then hands CRC32C and
SHA-256 to the destination, which checks the CRC32C of what it received and
stores the SHA-256 as metadata. A failed check leaves nothing at the key
(the backend contract's promise). Same-service pairs copy server-side and the
result is checked against the source's digest. A local source file is handed
to the destination directly, with the checksums recorded when it was written.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from storage_backends.base import Backend, ObjectStat
from storage_backends.checksums import CHUNK_SIZE, Hasher
from storage_backends.errors import ObjectNotFound

from ..errors import TrackArchiveError
from .digest import Digest, Verdict, compare, digest_of

#: Metadata the backends manage themselves and which must not be passed twice.
_RESERVED_METADATA = frozenset({"sha256", "crc32c"})


class CopyMismatch(TrackArchiveError):
    """The bytes copied do not match the checksums the source recorded."""


@dataclass(frozen=True, slots=True)
class Copied:
    """The outcome of one successful copy."""

    stat: ObjectStat
    digest: Digest
    server_side: bool


def content_type_for(key: str) -> str:
    """The media type stored with a copy, guessed from the key's extension."""
    if key.endswith(".webm"):
        return "video/webm"
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or "application/octet-stream"


def _check(expected: Digest | None, got: Digest, what: str, key: str) -> None:
    if expected is not None and compare(expected, got) is Verdict.DIFFERENT:
        raise CopyMismatch(
            f"{key}: {what} (expected size {expected.size}, crc32c {expected.crc32c}, "
            f"got size {got.size}, crc32c {got.crc32c})"
        )


def copy_server_side(
    source: Backend, dest: Backend, key: str, *, expected: Digest | None, replace: bool
) -> Copied | None:
    """Copy within one service; ``None`` when the pair cannot copy server-side."""
    stat = dest.copy_within(source, key, key, if_absent=not replace)
    if stat is None:
        return None
    got = digest_of(stat)
    try:
        _check(expected, got, "server-side copy differs from the source", key)
    except CopyMismatch:
        # What we just created is not the source's content: take it away again.
        with contextlib.suppress(ObjectNotFound):
            dest.delete(key)
        raise
    return Copied(stat, got, server_side=True)


def copy_streamed(
    source: Backend,
    dest: Backend,
    key: str,
    *,
    expected: Digest | None,
    replace: bool,
    temp_dir: Path | None = None,
    metadata: dict[str, str] | None = None,
) -> Copied:
    """Stream through a temporary file (bounded memory), verifying both ends."""
    fd, name = tempfile.mkstemp(prefix=".sync-", suffix=".part", dir=temp_dir)
    path = Path(name)
    try:
        hasher = Hasher()
        with os.fdopen(fd, "wb") as out, source.open_read(key) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
                out.write(chunk)
        read = Digest(hasher.size, hasher.crc32c, hasher.sha256)
        _check(expected, read, "the bytes read do not match the source's checksums", key)
        stat = dest.put_file(
            key,
            path,
            crc32c=read.crc32c or "",
            sha256=read.sha256 or "",
            content_type=content_type_for(key),
            metadata=metadata or None,
            if_absent=not replace,
        )
        if stat.size != read.size:
            raise CopyMismatch(f"{key}: destination reports {stat.size} bytes, sent {read.size}")
        return Copied(stat, read, server_side=False)
    finally:
        path.unlink(missing_ok=True)


def copy_from_local(
    source: Backend,
    dest: Backend,
    key: str,
    *,
    expected: Digest | None,
    replace: bool,
    metadata: dict[str, str],
) -> Copied | None:
    """Hand a local source file straight to the destination, with the source's recorded checksums.

    The destination checks the bytes it reads from the file against the CRC32C
    recorded when the source was written, so nothing is staged and the check is
    still end to end. ``None`` when the source is not local or lacks a checksum.
    """
    if expected is None or not expected.crc32c or not expected.sha256:
        return None
    path = source.local_path(key)
    if path is None:
        return None
    stat = dest.put_file(
        key,
        path,
        crc32c=expected.crc32c,
        sha256=expected.sha256,
        content_type=content_type_for(key),
        metadata=metadata or None,
        if_absent=not replace,
    )
    if stat.size != expected.size:
        raise CopyMismatch(
            f"{key}: destination reports {stat.size} bytes, expected {expected.size}"
        )
    return Copied(stat, expected, server_side=False)


def copy_object(
    source: Backend,
    dest: Backend,
    key: str,
    *,
    source_stat: ObjectStat | None = None,
    expected: Digest | None = None,
    replace: bool = False,
    temp_dir: Path | None = None,
) -> Copied:
    """Copy ``key`` from ``source`` to ``dest``, server-side when the service allows.

    ``replace=False`` makes the write create-only, so an object that appeared at
    the destination since the listing raises ``PreconditionFailed`` rather than
    being overwritten.
    """
    copied = copy_server_side(source, dest, key, expected=expected, replace=replace)
    if copied is not None:
        return copied
    metadata = {}
    if source_stat is not None:
        metadata = {
            k: v for k, v in source_stat.metadata.items() if k.lower() not in _RESERVED_METADATA
        }
    direct = copy_from_local(
        source, dest, key, expected=expected, replace=replace, metadata=metadata
    )
    if direct is not None:
        return direct
    return copy_streamed(
        source,
        dest,
        key,
        expected=expected,
        replace=replace,
        temp_dir=temp_dir,
        metadata=metadata,
    )
