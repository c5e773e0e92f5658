"""Opt-in live runs: set TRACK_ARCHIVE_LIVE_S3 / TRACK_ARCHIVE_LIVE_GCS to a bucket name.

With a bucket named, the whole contract suite (tests/storage/test_contract.py)
also runs against it, each test under its own random prefix, emptied after.
This module checks the real service's own integrity refusal once per bucket.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage_backends import IntegrityError, hash_bytes
from tests.fixtures.backends import LIVE_ENV

pytestmark = pytest.mark.live


@pytest.mark.parametrize("kind", sorted(LIVE_ENV))
def test_real_service_refuses_bytes_that_do_not_match_the_crc32c(
    kind: str, make_storage_target, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    if not os.environ.get(LIVE_ENV[kind]):
        pytest.skip(f"set {LIVE_ENV[kind]} to a bucket name to run live {kind} tests")
    target = make_storage_target(kind)
    path = tmp_path / "seg"
    path.write_bytes(b"bytes on disk")
    crc, sha = hash_bytes(b"bytes the downloader saw")
    with target.open() as backend:
        with pytest.raises(IntegrityError):
            backend.put_file("seg", path, crc32c=crc, sha256=sha)
        assert backend.stat("seg") is None
