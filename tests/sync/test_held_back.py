"""A session's manifest is held back from the destination for each reason it may be."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.layout import segment_key
from pipeline.sync import Outcome, sync
from storage_backends import Backend, BackendUnavailable, ObjectNotFound, ObjectStat, hash_bytes
from storage_backends.base import DEFAULT_MAX_SMALL_OBJECT

from .builders import ProxyBackend, build_session

LAYOUT = {("alice", "audio"): 2, ("bob", "audio"): 1}
MANIFEST = "s-1/manifest.json"
VICTIM = segment_key("s-1", "alice", "audio", "track_recording_alice_audio_1780000060000.webm")


class _FailsVictimUpload(ProxyBackend):
    def put_file(self, key: str, path: Path, **kwargs: Any) -> ObjectStat:  # type: ignore[override]
        if key == VICTIM:
            raise BackendUnavailable("throttled", backend=self.url, key=key)
        return super().put_file(key, path, **kwargs)


class _ManifestVanishes(ProxyBackend):
    """The manifest is listed, then gone by the time it is read."""

    def get_bytes(
        self, key: str, *, max_size: int = DEFAULT_MAX_SMALL_OBJECT
    ) -> tuple[bytes, ObjectStat]:
        if key == MANIFEST:
            raise ObjectNotFound("gone", backend=self.url, key=key)
        return super().get_bytes(key, max_size=max_size)


def _copy_fails(source: Backend, dest: Backend, tmp: Path) -> tuple[Backend, Backend]:
    return source, _FailsVictimUpload(dest)


def _conflict(source: Backend, dest: Backend, tmp: Path) -> tuple[Backend, Backend]:
    other = b"someone else's bytes" * 30
    crc, sha = hash_bytes(other)
    (tmp / "other").write_bytes(other)
    dest.put_file(VICTIM, tmp / "other", crc32c=crc, sha256=sha)
    return source, dest


def _truncated(source: Backend, dest: Backend, tmp: Path) -> tuple[Backend, Backend]:
    path = source.local_path(VICTIM)
    assert path is not None
    os.truncate(path, 10)
    return source, dest


def _source_lacks(source: Backend, dest: Backend, tmp: Path) -> tuple[Backend, Backend]:
    source.delete(VICTIM)
    return source, dest


def _vanished(source: Backend, dest: Backend, tmp: Path) -> tuple[Backend, Backend]:
    return _ManifestVanishes(source), dest


REASONS: dict[str, tuple[Callable[[Backend, Backend, Path], tuple[Backend, Backend]], str]] = {
    "a segment failed to copy": (_copy_fails, "held back: some of its segments were not copied"),
    "a segment conflicts": (_conflict, "held back: some of its segments were not copied"),
    "a segment contradicts its record": (_truncated, "held back: some of its segments"),
    "names a key the source lacks": (_source_lacks, "names 1 object(s) the source lacks"),
    "vanished from the source": (_vanished, "vanished from the source"),
}


@pytest.mark.parametrize("reason", sorted(REASONS))
def test_manifest_is_held_back(
    reason: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("local")
    keys = build_session(source, tmp_path, "s-1", LAYOUT)
    arrange, expected = REASONS[reason]
    src, dst = arrange(source, dest, tmp_path)

    report = sync(src, dst)
    manifest = next(i for i in report.items if i.key == MANIFEST)
    assert manifest.outcome is Outcome.FAILED
    assert expected in (manifest.reason or "")
    assert dest.stat(MANIFEST) is None
    assert not report.ok
    # Everything else of the session is still copied.
    others = [k for k in keys if k != VICTIM]
    assert all(dest.stat(k) is not None for k in others)
    if reason == "names a key the source lacks":
        # The key is simply absent at the source: nothing to copy, nothing failed for it.
        assert [i.key for i in report.items if i.outcome is Outcome.FAILED] == [MANIFEST]


class _WriterArrivesFirst(ProxyBackend):
    """Someone else writes the victim at the destination just before the sync's own write."""

    def __init__(self, inner: Backend, tmp: Path) -> None:
        super().__init__(inner)
        self.tmp = tmp

    def put_file(self, key: str, path: Path, **kwargs: Any) -> ObjectStat:  # type: ignore[override]
        if key == VICTIM:
            other = b"written meanwhile" * 40
            crc, sha = hash_bytes(other)
            (self.tmp / "meanwhile").write_bytes(other)
            self.inner.put_file(key, self.tmp / "meanwhile", crc32c=crc, sha256=sha)
        return super().put_file(key, path, **kwargs)


@pytest.mark.parametrize("src_kind", ["local", "s3"])
def test_an_object_appearing_at_the_destination_meanwhile_is_never_overwritten(
    src_kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    # A local source file is handed over in place; an S3 one is streamed: both write create-only.
    source, dest = backend_factory(src_kind), backend_factory("local")
    build_session(source, tmp_path, "s-1", LAYOUT)

    report = sync(source, _WriterArrivesFirst(dest, tmp_path))
    outcomes = {i.key: i for i in report.items}
    assert outcomes[VICTIM].outcome is Outcome.CONFLICT
    assert dest.get_bytes(VICTIM)[0] == b"written meanwhile" * 40
    assert outcomes[MANIFEST].outcome is Outcome.FAILED and dest.stat(MANIFEST) is None


class _SameBytesArriveFirst(ProxyBackend):
    """The victim's own bytes land just before the sync's write (a redelivered copy task)."""

    def put_file(self, key: str, path: Path, **kwargs: Any) -> ObjectStat:  # type: ignore[override]
        if key == VICTIM and self.inner.stat(key) is None:
            self.inner.put_file(key, path, crc32c=kwargs["crc32c"], sha256=kwargs["sha256"])
        return super().put_file(key, path, **kwargs)


@pytest.mark.parametrize("dst_kind", ["local", "s3"])
def test_an_object_already_holding_the_recorded_content_counts_as_copied(
    dst_kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    # A worker killed after its write and before acknowledging leaves exactly this behind.
    source, dest = backend_factory("local"), backend_factory(dst_kind)
    keys = build_session(source, tmp_path, "s-1", LAYOUT)

    report = sync(source, _SameBytesArriveFirst(dest))
    outcomes = {i.key: i for i in report.items}
    assert outcomes[VICTIM].outcome is Outcome.COPIED
    assert outcomes[VICTIM].reason == "already at the destination with the recorded content"
    assert report.ok
    assert outcomes[MANIFEST].outcome is Outcome.COPIED
    assert all(dest.get_bytes(k)[0] == source.get_bytes(k)[0] for k in [*keys, MANIFEST])
