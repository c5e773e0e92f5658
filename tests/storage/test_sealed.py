"""A sealed file is stored on the checksums its writer computed, never on a file that changed since.

``put_file(..., sealed=seal)`` trusts the given checksums instead of hashing
the file again; the local backend links the file itself into place. Each way
the file can change after sealing (the same size and CRC32C, a truncation, a
replacement) must still be refused on every backend, with nothing at the key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage_backends import (
    Backend,
    IntegrityError,
    PreconditionFailed,
    hash_bytes,
)
from storage_backends.local import LocalBackend
from storage_backends.sealed import FileSeal, reseal_if_same
from tests.safety.forge import same_crc32c

KEY = "s-1/alice/video/track_recording_alice_video_1780000000000.webm"
DATA = bytes(range(256)) * 400
MIB = 1024 * 1024


def _sealed(path: Path, data: bytes = DATA) -> FileSeal:
    path.write_bytes(data)
    return FileSeal.apply(path)


def _put(backend: Backend, path: Path, seal: FileSeal, key: str = KEY, data: bytes = DATA):
    crc, sha = hash_bytes(data)
    return backend.put_file(key, path, crc32c=crc, sha256=sha, if_absent=True, sealed=seal)


def test_a_sealed_file_is_linked_into_a_local_archive_not_copied(tmp_path: Path) -> None:
    archive = LocalBackend(tmp_path / "archive")
    staged = tmp_path / "staged.part"
    seal = _sealed(staged)

    stat = _put(archive, staged, seal)

    stored = archive.local_path(KEY)
    assert stored is not None and os.stat(stored).st_ino == seal.inode  # the same file
    assert not staged.exists()  # handed over: the staging name is gone
    assert (stat.crc32c, stat.sha256) == hash_bytes(DATA)
    assert archive.stat(KEY) == stat and archive.get_bytes(KEY)[0] == DATA


def _same_size_and_crc32c(path: Path) -> None:
    path.write_bytes(same_crc32c(DATA, at=len(DATA) // 2))


def _truncated(path: Path) -> None:
    os.truncate(path, len(DATA) - 1)


def _replaced(path: Path) -> None:
    fresh = path.with_suffix(".new")
    fresh.write_bytes(DATA)  # even the same bytes: the seal is of the file, not of a name
    os.replace(fresh, path)


@pytest.mark.parametrize("change", [_same_size_and_crc32c, _truncated, _replaced])
def test_a_file_changed_after_sealing_is_refused_on_every_backend(
    change: Callable[[Path], None], backend: Backend, tmp_path: Path
) -> None:
    staged = tmp_path / "staged.part"
    seal = _sealed(staged)
    change(staged)  # at once: within the same tick of the file system's clock

    with pytest.raises(IntegrityError, match="changed after its checksums were computed"):
        _put(backend, staged, seal)
    assert backend.stat(KEY) is None
    assert staged.exists()  # the refused bytes stay with the caller (for its quarantine)


def test_an_occupied_key_refuses_a_sealed_file_and_leaves_it_to_the_caller(
    backend: Backend, tmp_path: Path
) -> None:
    occupant = tmp_path / "occupant"
    _put(backend, occupant, _sealed(occupant))
    staged = tmp_path / "staged.part"
    seal = _sealed(staged)

    with pytest.raises(PreconditionFailed):
        _put(backend, staged, seal)
    assert staged.exists() and seal.holds_for(staged)  # usable for a conflict copy
    other = KEY.replace(".webm", ".conflict-0123456789ab.webm")
    assert _put(backend, staged, seal, key=other).sha256 == hash_bytes(DATA)[1]
    assert backend.get_bytes(other)[0] == DATA and not staged.exists()


def test_a_sealed_file_on_another_file_system_is_copied(tmp_path: Path) -> None:
    elsewhere = Path("/dev/shm")
    if not elsewhere.is_dir() or elsewhere.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (tmpfs /dev/shm) beside the test directory")
    archive = LocalBackend(tmp_path / "archive")
    staged = elsewhere / f"track-archive-test-{os.getpid()}.part"
    try:
        seal = _sealed(staged)
        stat = _put(archive, staged, seal)
    finally:
        staged.unlink(missing_ok=True)
    stored = archive.local_path(KEY)
    assert stored is not None and os.stat(stored).st_ino != seal.inode  # a copy, checked
    assert (stat.crc32c, stat.sha256) == hash_bytes(DATA)
    assert archive.get_bytes(KEY)[0] == DATA


def test_a_file_found_again_is_sealed_only_when_its_bytes_prove(tmp_path: Path) -> None:
    crc, sha = hash_bytes(DATA)
    staged = tmp_path / "staged.part"
    staged.write_bytes(DATA)
    seal = reseal_if_same(staged, size=len(DATA), crc32c=crc, sha256=sha)
    assert seal is not None and seal.holds_for(staged)

    _same_size_and_crc32c(staged)
    assert reseal_if_same(staged, size=len(DATA), crc32c=crc, sha256=sha) is None
    assert not seal.holds_for(staged)


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_large_sealed_files_upload_in_parts_on_the_given_checksums(
    kind: str, make_storage_target: Callable[[str], Any], tmp_path: Path
) -> None:
    # Above the thresholds: S3 multipart (one 5 MiB part and the rest), GCS resumable chunks.
    target = make_storage_target(kind).with_options(
        s3={"multipart_threshold": 5 * MIB, "part_size": 5 * MIB},
        gcs={"resumable_threshold": 256 * 1024, "chunk_size": 256 * 1024},
    )
    data = bytes(range(256)) * (6 * MIB // 256)
    staged = tmp_path / "staged.part"
    seal = _sealed(staged, data)
    with target.open() as backend:
        stat = _put(backend, staged, seal, data=data)
        assert (stat.size, stat.crc32c, stat.sha256) == (len(data), *hash_bytes(data))
        assert backend.get_bytes(KEY)[0] == data and not staged.exists()
