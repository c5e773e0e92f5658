"""Different content of the same size at an occupied key is a conflict copy, never "already archived"."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pipeline.layout import segment_key
from pipeline.manifest import read_manifest
from storage_backends import hash_file
from tests.safety.forge import same_crc32c

from .conftest import serve_meeting, write_jsonl


def _flipped(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


@pytest.mark.parametrize(
    "occupant",
    [_flipped, lambda data: same_crc32c(data, at=len(data) // 2)],
    ids=["same-size", "same-size-and-crc32c"],
)
def test_same_size_other_content_is_stored_as_a_conflict_copy(
    occupant, meeting, origin, run_archive, archived, tmp_path: Path
) -> None:
    bodies = serve_meeting(origin, meeting)
    seg = meeting.segments[0]
    key = segment_key(meeting.session_id, seg.participant_id, seg.kind, seg.filename)
    theirs = tmp_path / "occupant"
    theirs.write_bytes(occupant(seg.path.read_bytes()))
    crc, sha, size = hash_file(theirs)
    assert size == seg.path.stat().st_size
    archived.put_file(key, theirs, crc32c=crc, sha256=sha)

    run = run_archive(write_jsonl(tmp_path / "w.jsonl", bodies))
    assert run.exit_code == 0, run.result.output
    assert [c["key"] for c in run.summary["conflicts"]] == [key]
    assert run.summary["archived"] == len(meeting.segments)  # stored anew, not "already there"
    assert run.summary["skipped"] == 0
    assert archived.get_bytes(key)[0] == theirs.read_bytes()  # never overwritten
    stored_at = run.summary["conflicts"][0]["storedAt"]
    ours = hashlib.sha256(seg.path.read_bytes()).hexdigest()
    assert archived.stat(stored_at).sha256 == ours
    manifest, _ = read_manifest(archived, meeting.session_id)
    entries = {s.key: s for _, _, s in manifest.segments()}
    assert key not in entries
    assert entries[stored_at].conflictWith == key and entries[stored_at].sha256 == ours


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_a_stale_record_at_the_key_is_not_taken_for_the_archived_file(
    target, meeting, origin, run_archive, archived, tmp_path: Path
) -> None:
    # The object was once this very segment, then changed in place (same size,
    # same CRC32C, mtime restored): its stored record still names our SHA-256.
    bodies = serve_meeting(origin, meeting)
    seg = meeting.segments[0]
    key = segment_key(meeting.session_id, seg.participant_id, seg.kind, seg.filename)
    crc, sha, _ = hash_file(seg.path)
    archived.put_file(key, seg.path, crc32c=crc, sha256=sha)
    path = archived.local_path(key)
    before = os.stat(path)
    path.write_bytes(same_crc32c(seg.path.read_bytes(), at=before.st_size // 2))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert archived.stat(key).sha256 == sha  # the record still claims our content

    run = run_archive(write_jsonl(tmp_path / "w.jsonl", bodies))
    assert run.exit_code == 0, run.result.output
    assert [c["key"] for c in run.summary["conflicts"]] == [key]
    stored_at = run.summary["conflicts"][0]["storedAt"]
    assert archived.get_bytes(stored_at)[0] == seg.path.read_bytes()
