"""Both checksums are checked at the store step: the right CRC32C with a wrong SHA-256 is refused.

The staged file is damaged after it was verified, in a way the CRC32C cannot
see (or the recorded CRC32C is wrong while the SHA-256 is right): the store
step must refuse it on every backend and leave nothing at the key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.archive.store import store_verified
from pipeline.download import DownloadResult
from storage_backends import Backend, IntegrityError, hash_bytes
from tests.fixtures.backends import StorageTarget
from tests.safety.forge import same_crc32c

KEY = "s-1/alice/audio/track_recording_alice_audio_1780000000000.webm"
DATA = bytes(range(256)) * 40
MIB = 1024 * 1024


def _verified(path: Path, crc32c: str, sha256: str) -> DownloadResult:
    return DownloadResult(
        ok=True,
        reason=None,
        url="https://cdn.example/a.webm",
        path=path,
        size=len(DATA),
        crc32c=crc32c,
        sha256=sha256,
        container="webm",
    )


@pytest.mark.parametrize("wrong", ["sha256", "crc32c"])
def test_store_refuses_a_file_failing_either_checksum(
    wrong: str, backend: Backend, tmp_path: Path
) -> None:
    crc, sha = hash_bytes(DATA)
    staged = tmp_path / "staged.webm"
    if wrong == "sha256":
        staged.write_bytes(same_crc32c(DATA, at=100))  # CRC32C still right, SHA-256 wrong
    else:
        staged.write_bytes(DATA)
        crc = hash_bytes(b"other")[0]  # SHA-256 right, CRC32C wrong

    with pytest.raises(IntegrityError):
        store_verified(backend, KEY, _verified(staged, crc, sha))
    assert backend.stat(KEY) is None


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_large_uploads_check_the_sha256_too(
    kind: str, make_storage_target: Callable[[str], StorageTarget], tmp_path: Path
) -> None:
    # Above the thresholds: S3 multipart (one 5 MiB part and the rest), GCS resumable chunks.
    target = make_storage_target(kind).with_options(
        s3={"multipart_threshold": 5 * MIB, "part_size": 5 * MIB},
        gcs={"resumable_threshold": 256 * 1024, "chunk_size": 256 * 1024},
    )
    data = bytes(range(256)) * (6 * MIB // 256)
    crc, sha = hash_bytes(data)
    staged = tmp_path / "staged.webm"
    staged.write_bytes(same_crc32c(data, at=5 * MIB + 10))
    with target.open() as backend:
        with pytest.raises(IntegrityError):
            backend.put_file(KEY, staged, crc32c=crc, sha256=sha)
        assert backend.stat(KEY) is None
        staged.write_bytes(data)
        assert backend.put_file(KEY, staged, crc32c=crc, sha256=sha).sha256 == sha
