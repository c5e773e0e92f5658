from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.layout import segment_key
from pipeline.manifest import ManifestUpdate, read_manifest, update_manifest
from pipeline.sync import Outcome, SyncItem, SyncOptions, sync
from storage_backends import Backend, ObjectStat, hash_bytes
from tests.fixtures.backends import KINDS

from .builders import ProxyBackend, build_session, contents, put_segment

LAYOUT = {("alice", "audio"): 2, ("alice", "video"): 1, ("bob", "audio"): 2}
PER_SESSION = sum(LAYOUT.values()) + 1  # segments plus the manifest


def make_archive(backend: Backend, tmp: Path, sessions: tuple[str, ...] = ("s-1", "s-2")) -> None:
    for n, session in enumerate(sessions):
        build_session(backend, tmp, session, LAYOUT, start_ms=1_780_000_000_000 + n * 3_600_000)


class Interrupted(BaseException):
    """Stands in for a kill: not an ``Exception``, so nothing reports it as a failed copy."""


@pytest.mark.parametrize(("src_kind", "dst_kind"), list(itertools.product(KINDS, KINDS)))
def test_sync_copies_everything_then_nothing(
    src_kind: str, dst_kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory(src_kind), backend_factory(dst_kind)
    make_archive(source, tmp_path)

    report = sync(source, dest)
    assert report.summary() == {
        "copied": 2 * PER_SESSION, "skipped": 0, "conflicts": 0, "deleted": 0, "failed": 0,
        "bytes": sum(s.size for s in source.list()),
    }  # fmt: skip
    assert contents(dest) == contents(source)
    for stat in source.list():
        copied = dest.stat(stat.key)
        assert copied is not None
        original = source.stat(stat.key)
        assert original is not None
        assert (copied.crc32c, copied.sha256) == (original.crc32c, original.sha256)
    same_service = src_kind == dst_kind and src_kind != "local"
    assert all(i.server_side is same_service for i in report.items if not i.key.endswith(".json"))

    # Nothing changed: no object is read again, none written; only manifests may be
    # read where a listing carries no checksum (S3), one per session.
    counted_src, counted_dst = ProxyBackend(source), ProxyBackend(dest)
    again = sync(counted_src, counted_dst)
    assert again.summary()["copied"] == 0
    assert again.skipped == 2 * PER_SESSION
    for side, kind in ((counted_src, src_kind), (counted_dst, dst_kind)):
        assert side.calls.get("put_file", 0) + side.calls.get("put_bytes", 0) == 0
        assert side.reads() == (2 if kind == "s3" else 0)


@pytest.mark.parametrize("dst_kind", ["local", "s3"])
def test_interrupted_sync_resumes_with_only_what_is_missing(
    dst_kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory(dst_kind)
    make_archive(source, tmp_path)

    class DiesOnFourthWrite(ProxyBackend):
        def put_file(self, key: str, path: Path, **kwargs: Any) -> ObjectStat:  # type: ignore[override]
            if self.calls.get("put_file", 0) >= 3:
                raise Interrupted
            return super().put_file(key, path, **kwargs)

    with pytest.raises(Interrupted):
        sync(source, DiesOnFourthWrite(dest), SyncOptions(concurrency=1))
    landed = set(contents(dest))
    assert len(landed) == 3
    assert not any(k.endswith("manifest.json") for k in landed), "a manifest before its segments"

    report = sync(source, dest)
    assert report.copied == 2 * PER_SESSION - 3
    assert report.skipped == 3
    assert contents(dest) == contents(source)


def test_manifest_is_written_after_every_segment_it_names(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("gcs")
    make_archive(source, tmp_path, ("s-1", "s-2", "s-3"))
    order: list[str] = []

    class Recording(ProxyBackend):
        def put_file(self, key: str, path: Path, **kwargs: Any) -> ObjectStat:  # type: ignore[override]
            stat = super().put_file(key, path, **kwargs)
            order.append(key)
            return stat

    sync(source, Recording(dest), SyncOptions(concurrency=4))
    for session in ("s-1", "s-2", "s-3"):
        manifest, _ = read_manifest(source, session)
        assert manifest is not None
        at = order.index(f"{session}/manifest.json")
        assert all(order.index(seg.key) < at for _, _, seg in manifest.segments())


@pytest.mark.parametrize("dst_kind", KINDS)
def test_corrupted_copy_is_refused_and_leaves_nothing(
    dst_kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory(dst_kind)
    make_archive(source, tmp_path, ("s-1",))
    victim = segment_key("s-1", "bob", "audio", "track_recording_bob_audio_1780000180000.webm")

    # No test double corrupts bytes in transit, so the fault is injected at our own
    # boundary: the destination is handed a damaged copy of the file we meant to send,
    # with the checksums of the real one. The destination's own CRC32C check must refuse it.
    class Corrupting(ProxyBackend):
        def put_file(self, key: str, path: Path, **kwargs: Any) -> ObjectStat:  # type: ignore[override]
            if key == victim:
                data = bytearray(path.read_bytes())
                data[10] ^= 0xFF
                path = tmp_path / "damaged"
                path.write_bytes(bytes(data))
            return super().put_file(key, path, **kwargs)

    report = sync(source, Corrupting(dest))
    failed = {i.key: i for i in report.items if i.outcome is Outcome.FAILED}
    assert set(failed) == {victim, "s-1/manifest.json"}
    assert "held back" in (failed["s-1/manifest.json"].reason or "")
    assert dest.stat(victim) is None
    assert dest.stat("s-1/manifest.json") is None
    assert report.copied == PER_SESSION - 2
    assert not report.ok

    healed = sync(source, dest)
    assert healed.copied == 2 and healed.ok
    assert contents(dest) == contents(source)


def test_conflict_is_left_alone_unless_overwrite(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("s3"), backend_factory("local")
    make_archive(source, tmp_path, ("s-1",))
    key = segment_key("s-1", "alice", "audio", "track_recording_alice_audio_1780000000000.webm")
    intruder = b"not the recording" * 20
    crc, sha = hash_bytes(intruder)
    (tmp_path / "x").write_bytes(intruder)
    dest.put_file(key, tmp_path / "x", crc32c=crc, sha256=sha)

    report = sync(source, dest)
    outcomes = {i.key: i.outcome for i in report.items}
    assert outcomes[key] is Outcome.CONFLICT
    assert outcomes["s-1/manifest.json"] is Outcome.FAILED
    assert dest.get_bytes(key)[0] == intruder
    assert dest.stat("s-1/manifest.json") is None
    assert report.conflicts == 1 and not report.ok

    forced = sync(source, dest, SyncOptions(overwrite=True))
    assert forced.copied == 2 and forced.ok
    assert contents(dest) == contents(source)


def test_delete_removes_only_destination_extras_and_only_when_asked(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("s3")
    make_archive(source, tmp_path, ("s-1",))
    sync(source, dest)
    extra_keys = build_session(dest, tmp_path, "gone", {("carol", "audio"): 2})

    kept = sync(source, dest)
    assert kept.deleted == 0 and kept.ok
    assert dest.stat("gone/manifest.json") is not None

    preview = sync(source, dest, SyncOptions(delete=True, dry_run=True))
    assert preview.deleted == 3
    assert dest.stat("gone/manifest.json") is not None

    report = sync(source, dest, SyncOptions(delete=True))
    assert report.deleted == 3 and report.ok
    assert all(dest.stat(k) is None for k in [*extra_keys, "gone/manifest.json"])
    assert contents(dest) == contents(source)


def test_grown_manifest_supersedes_and_diverged_one_conflicts(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("local")
    make_archive(source, tmp_path, ("s-1",))
    sync(source, dest)

    # The session grows at the source (a late webhook): the destination catches up.
    late = put_segment(
        source, tmp_path, "s-1", "bob", "video", 9, b"late" * 99, started_ms=1_780_000_900_000
    )
    update_manifest(source, ManifestUpdate(session_id="s-1", segments=[late]))
    report = sync(source, dest)
    assert report.copied == 2 and report.conflicts == 0
    assert contents(dest) == contents(source)

    # The destination gains an entry the source lacks: it already holds everything.
    own = put_segment(
        dest, tmp_path, "s-1", "dan", "audio", 10, b"own" * 99, started_ms=1_780_000_990_000
    )
    update_manifest(dest, ManifestUpdate(session_id="s-1", segments=[own]))
    superset = sync(source, dest)
    assert superset.ok and superset.copied == 0

    # Now each side has an entry the other lacks: the manifests diverged.
    later = put_segment(
        source, tmp_path, "s-1", "eve", "audio", 11, b"eve" * 99, started_ms=1_780_001_000_000
    )
    update_manifest(source, ManifestUpdate(session_id="s-1", segments=[later]))
    diverged = sync(source, dest)
    assert [i.key for i in diverged.items if i.outcome is Outcome.CONFLICT] == ["s-1/manifest.json"]
    assert dest.stat(later[2].key) is not None
    held, _ = read_manifest(dest, "s-1")
    assert held is not None and "dan" in held.participants and "eve" not in held.participants


def test_dry_run_and_session_filter(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("gcs"), backend_factory("s3")
    make_archive(source, tmp_path, ("s-1", "s-2"))

    preview = sync(source, dest, SyncOptions(dry_run=True))
    assert preview.dry_run and preview.copied == 2 * PER_SESSION
    assert list(dest.list()) == []

    only = sync(source, dest, SyncOptions(sessions=("s-2",)))
    assert only.copied == PER_SESSION
    assert {k.split("/")[0] for k in contents(dest)} == {"s-2"}


def test_a_sync_leaves_no_working_files_and_removes_a_killed_run_s(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("s3")
    make_archive(source, tmp_path)
    staging = tmp_path / "staging"
    # What a run SIGKILLed mid-copy leaves (tests/pipeline/test_scratch.py kills a real
    # process): its scratch directory, the lock in it free, and a half-staged copy.
    killed = staging / ".scratch-sync-killed"
    killed.mkdir(parents=True)
    (killed / "lock").touch()
    (killed / ".sync-abc.part").write_bytes(b"half")
    os.utime(killed, (time.time() - 3600,) * 2)

    report = sync(ProxyBackend(source), dest, SyncOptions(temp_dir=staging))
    assert report.summary()["copied"] == 2 * PER_SESSION
    assert list(staging.iterdir()) == []


def test_item_json_form_holds_every_field_ready_for_json() -> None:
    # The form --json prints and broker workers send back is spelled out by hand:
    # a field added to SyncItem must not be dropped from it.
    item = SyncItem("s/a.webm", Outcome.FAILED, 7, "why", False)
    data = item.to_dict()
    assert set(data) == {f.name for f in dataclasses.fields(SyncItem)}
    assert json.loads(json.dumps(data)) == {
        "key": "s/a.webm",
        "outcome": "failed",
        "size": 7,
        "reason": "why",
        "server_side": False,
    }
