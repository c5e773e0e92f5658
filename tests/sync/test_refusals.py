"""What a sync refuses: a manifest it cannot read, and --delete from a source that holds nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.sync import Outcome, SyncOptions, sync
from storage_backends import Backend

from .builders import build_session, contents

LAYOUT = {("alice", "audio"): 2, ("bob", "audio"): 1}


def make_archive(backend: Backend, tmp: Path, sessions: tuple[str, ...]) -> None:
    for session in sessions:
        build_session(backend, tmp, session, LAYOUT)


def _replace(backend: Backend, key: str, data: bytes) -> None:
    backend.delete(key)
    backend.put_bytes(key, data, content_type="application/json")


def test_an_unreadable_manifest_is_never_copied_and_named_as_such(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("local")
    make_archive(source, tmp_path, ("s-1",))
    sync(source, dest)
    good, _ = dest.get_bytes("s-1/manifest.json")
    garbage = b'{"schemaVersion": 1, "sessionId": 7}'

    # Broken at the source: not even --overwrite puts it over the destination's good one.
    _replace(source, "s-1/manifest.json", garbage)
    for options in (SyncOptions(), SyncOptions(overwrite=True)):
        report = sync(source, dest, options)
        (item,) = [i for i in report.items if i.key == "s-1/manifest.json"]
        assert item.outcome is Outcome.FAILED and "source" in (item.reason or "")
        assert "not a valid manifest" in (item.reason or "")
        assert dest.get_bytes("s-1/manifest.json")[0] == good
        assert not report.ok

    # Broken at the destination: a conflict that says so, replaced only with --overwrite.
    _replace(source, "s-1/manifest.json", good)
    _replace(dest, "s-1/manifest.json", garbage)
    report = sync(source, dest)
    (item,) = [i for i in report.items if i.key == "s-1/manifest.json"]
    assert item.outcome is Outcome.CONFLICT
    assert "destination" in (item.reason or "") and "not a valid manifest" in (item.reason or "")
    assert sync(source, dest, SyncOptions(overwrite=True)).ok
    assert dest.get_bytes("s-1/manifest.json")[0] == good


def test_delete_from_an_empty_source_is_refused_before_anything_is_deleted(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("s3")
    make_archive(source, tmp_path, ("s-1",))
    sync(source, dest)
    before = contents(dest)
    # A mistyped source: an empty prefix, or a local path that does not exist (opened empty).
    empty = backend_factory("local")

    for options in (SyncOptions(delete=True), SyncOptions(delete=True, dry_run=True)):
        with pytest.raises(ConfigError, match="holds nothing"):
            sync(empty, dest, options)
        assert contents(dest) == before
    with pytest.raises(ConfigError, match="holds nothing"):
        sync(empty, dest, SyncOptions(delete=True, sessions=("s-1",)))
    assert contents(dest) == before
    # Without --delete an empty source is harmless: nothing is copied, nothing removed.
    assert sync(empty, dest).ok and contents(dest) == before
