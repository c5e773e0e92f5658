"""GCS specifics against the emulator, and what the emulator cannot show."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as google_exceptions
from google.cloud import storage

from storage_backends import PreconditionFailed, hash_file
from storage_backends.gcs import GCSBackend
from tests.fixtures.backends import StorageTarget

MiB = 1024 * 1024


@pytest.fixture
def gcs_target(make_storage_target) -> StorageTarget:  # type: ignore[no-untyped-def]
    return make_storage_target("gcs")


@pytest.fixture
def gcs(gcs_target: StorageTarget, backend_factory) -> GCSBackend:  # type: ignore[no-untyped-def]
    backend = backend_factory(gcs_target)
    assert isinstance(backend, GCSBackend)
    return backend


def test_stale_generation_is_sent_and_a_412_is_a_lost_race(
    gcs: GCSBackend, gcs_target: StorageTarget, backend_factory, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # The emulator ignores ifGenerationMatch, so it cannot lose a race for us.
    # At our boundary: a rival writer lands right after our pre-check, we record
    # the generation our upload sends, and answer it with the 412 real GCS gives.
    base = gcs.put_bytes("manifest.json", b"v1")
    rival = backend_factory(gcs_target)
    real_check = GCSBackend._check_condition

    def check_then_rival_writes(self: GCSBackend, key: str, **kwargs: Any) -> None:
        real_check(self, key, **kwargs)
        if self is gcs:
            rival.put_bytes(key, b"rival v2")

    real_upload = storage.Blob.upload_from_string
    sent: list[Any] = []

    def upload_or_412(self: storage.Blob, data: bytes, **kwargs: Any) -> Any:
        if data == b"our v2":
            sent.append(kwargs["if_generation_match"])
            raise google_exceptions.PreconditionFailed("conditionNotMet")
        return real_upload(self, data, **kwargs)

    monkeypatch.setattr(GCSBackend, "_check_condition", check_then_rival_writes)
    monkeypatch.setattr(storage.Blob, "upload_from_string", upload_or_412)
    with pytest.raises(PreconditionFailed):
        gcs.put_bytes("manifest.json", b"our v2", if_version=base.version)

    assert sent == [int(base.version or 0)]  # the generation we had read, not the rival's
    assert gcs.get_bytes("manifest.json")[0] == b"rival v2"


def test_create_only_sends_generation_zero(
    gcs: GCSBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Same limitation: record what reaches the SDK, then let the real upload run.
    path = tmp_path / "seg"
    path.write_bytes(b"segment")
    crc, sha, _ = hash_file(path)
    real_upload = storage.Blob.upload_from_file
    sent: list[Any] = []

    def recording_upload(self: storage.Blob, *args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs["if_generation_match"])
        return real_upload(self, *args, **kwargs)

    monkeypatch.setattr(storage.Blob, "upload_from_file", recording_upload)
    gcs.put_file("seg", path, crc32c=crc, sha256=sha, if_absent=True)
    gcs.put_file("other", path, crc32c=crc, sha256=sha)
    assert sent == [0, None]


def test_resumable_upload_over_the_threshold_is_verified_by_the_service(
    gcs_target: StorageTarget, backend_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    gcs = backend_factory(
        gcs_target.with_options(gcs={"resumable_threshold": MiB, "chunk_size": MiB})
    )
    path = tmp_path / "big"
    path.write_bytes(os.urandom(3 * MiB + 17))
    crc, sha, size = hash_file(path)
    stat = gcs.put_file("big", path, crc32c=crc, sha256=sha)
    assert (stat.size, stat.crc32c, stat.sha256) == (size, crc, sha)


def test_listing_carries_crc32c_and_sha256(gcs: GCSBackend) -> None:
    written = gcs.put_bytes("a/doc", b"payload", metadata={"kind": "audio"})
    (listed,) = list(gcs.list("a/"))
    assert (listed.crc32c, listed.sha256, listed.version) == (
        written.crc32c,
        written.sha256,
        written.version,
    )
    assert listed.metadata["kind"] == "audio"
