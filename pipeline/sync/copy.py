"""Copying one object between backends, re-proved against what was recorded for it.

``expected`` is the size and checksums recorded for the object (its stored
metadata and its manifest entry, see ``plan.py``); every path proves the
bytes it moves against all of them, and a failed proof leaves nothing at the
destination:

* streamed: the bytes read are hashed (CRC32C and SHA-256) and compared with
  the record before the destination sees them; the destination then checks
  the CRC32C of what it received;
* a local source file is handed to the destination in place with the
  recorded checksums; every backend hashes what it sends or writes with both
  and refuses a mismatch (the ``put_file`` contract);
* server-side (same service): only the service sees the bytes, so the CRC32C
  it computed for the copy must equal the recorded one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from storage_backends.base import Backend, ObjectStat
from storage_backends.checksums import CHUNK_SIZE, Hasher
from storage_backends.errors import ObjectNotFound

from ..errors import TrackArchiveError
from ..segment import content_type_for
from .digest import Digest, digest_of, disproof

#: Metadata the backends manage themselves and which must not be passed twice.
_RESERVED_METADATA = frozenset({"sha256", "crc32c"})


class CopyMismatch(TrackArchiveError):
    """The bytes copied are not the content recorded for the object."""


@dataclass(frozen=True, slots=True)
class Copied:
    """The outcome of one successful copy."""

    stat: ObjectStat
    digest: Digest
    server_side: bool


def _prove(
    expected: Digest | None,
    got: Digest,
    what: str,
    key: str,
    *,
    checksums: tuple[str, ...] = ("CRC32C", "SHA-256"),
) -> None:
    """Raise ``CopyMismatch`` naming ``key`` unless ``got`` is the recorded content."""
    if expected is None:
        return
    problem = disproof(expected, got, checksums=checksums)
    if problem is not None:
        raise CopyMismatch(f"{key}: {what}: {problem}")


def _undo(dest: Backend, key: str) -> None:
    # What we just wrote is not the recorded content: take it away again.
    with contextlib.suppress(ObjectNotFound):
        dest.delete(key)


def copy_server_side(
    source: Backend, dest: Backend, key: str, *, expected: Digest | None, replace: bool
) -> Copied | None:
    """Copy within one service; ``None`` when the pair cannot copy server-side.

    Without a recorded CRC32C nothing could prove the service's copy, so the
    object is streamed (and hashed) instead.
    """
    if expected is None or not expected.crc32c:
        return None
    stat = dest.copy_within(source, key, key, if_absent=not replace)
    if stat is None:
        return None
    got = digest_of(stat)
    try:
        # The SHA-256 a copy carries is the source's metadata, not a hash of the
        # bytes: the service's own CRC32C is the proof here.
        _prove(
            expected,
            got,
            "the server-side copy is not the recorded content",
            key,
            checksums=("CRC32C",),
        )
    except CopyMismatch:
        _undo(dest, key)
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
        _prove(expected, read, "the bytes read are not the recorded content", key)
        stat = dest.put_file(
            key,
            path,
            crc32c=read.crc32c or "",
            sha256=read.sha256 or "",
            content_type=content_type_for(key),
            metadata=metadata or None,
            if_absent=not replace,
        )
        _check_stored(dest, key, read, stat)
        return Copied(stat, read, server_side=False)
    finally:
        path.unlink(missing_ok=True)


def _check_stored(dest: Backend, key: str, sent: Digest, stat: ObjectStat) -> None:
    """The destination's own account of what it stored must agree with what was sent."""
    try:
        _prove(sent, digest_of(stat), "the destination reports other content", key, checksums=())
    except CopyMismatch:
        _undo(dest, key)
        raise


def copy_from_local(
    source: Backend,
    dest: Backend,
    key: str,
    *,
    expected: Digest | None,
    replace: bool,
    metadata: dict[str, str],
) -> Copied | None:
    """Hand a local source file straight to the destination, with the recorded checksums.

    The destination checks the bytes it reads from the file against both
    recorded checksums, so nothing is staged or read twice.
    ``None`` when the source is not local or the record lacks a checksum.
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
    _check_stored(dest, key, expected, stat)
    return Copied(stat, expected, server_side=False)


def holds_recorded(dest: Backend, key: str, expected: Digest | None) -> Copied | None:
    """``dest``'s object at ``key`` when it is provably the recorded content, else ``None``.

    A create-only copy that finds its key taken may find its own earlier
    attempt there: a worker that stored the object and died before its task
    was acknowledged. The service's size and CRC32C must equal the record (a
    SHA-256 in its metadata too, when it has one), as for a server-side copy.
    """
    if expected is None or not expected.crc32c:
        return None
    stat = dest.stat(key)
    if stat is None:
        return None
    got = digest_of(stat)
    if disproof(expected, got, checksums=("CRC32C",)) is not None:
        return None
    return Copied(stat, got, server_side=False)


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
