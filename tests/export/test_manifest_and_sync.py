"""Exports are listed in the manifest, re-made only when their inputs change, and synced."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from pipeline.export import ExportRequest, export_session
from pipeline.layout import export_prefix
from pipeline.manifest import Manifest, read_manifest
from pipeline.sync import SyncOptions, sync
from storage_backends import Backend
from tests.export.conftest import SESSION, T0, SegmentFile, archive_files


def test_exports_are_listed_with_their_sources_and_checksums(archived: Callable) -> None:
    _, backend = archived("local")
    report = export_session(backend, SESSION, ExportRequest(participants=("bob",), mix=True))
    manifest, _ = read_manifest(backend, SESSION)
    assert manifest is not None
    by_key = {e.key: e for e in manifest.exports}
    for exported in report.files:
        entry = by_key[exported.key]
        assert entry.sha256 == exported.sha256 == backend.stat(exported.key).sha256
        assert [s.key for s in entry.sources] == list(exported.sources)
    bob = by_key[f"{SESSION}/%exports/bob.camera.copy.mkv"]
    recorded = {s.key: s.sha256 for _, _, s in manifest.segments()}
    assert all(recorded[s.key] == s.sha256 for s in bob.sources)
    assert (bob.participantId, bob.pair, bob.mode, bob.format) == ("bob", "camera", "copy", "mkv")
    assert bob.startSeconds == pytest.approx(4.0, abs=0.01)
    mix = by_key[f"{SESSION}/%exports/mix.mka"]
    assert mix.participantId is None and len(mix.sources) == 5


def test_a_rerun_with_unchanged_inputs_does_nothing(archived: Callable) -> None:
    _, backend = archived("local")
    first = export_session(backend, SESSION, ExportRequest(participants=("bob",)))
    manifest_version = backend.stat(f"{SESSION}/manifest.json").version
    object_version = backend.stat(first.files[0].key).version
    again = export_session(backend, SESSION, ExportRequest(participants=("bob",)))
    assert [f.status for f in again.files] == ["unchanged"]
    assert again.files[0].sha256 == first.files[0].sha256
    assert backend.stat(f"{SESSION}/manifest.json").version == manifest_version
    assert backend.stat(first.files[0].key).version == object_version


def test_a_new_segment_remakes_only_the_exports_it_feeds(
    archived: Callable, session_files: list[SegmentFile], tmp_path
) -> None:
    from datetime import timedelta

    from pipeline.media import synth

    _, backend = archived("local")
    export_session(backend, SESSION, ExportRequest())
    at = T0 + timedelta(seconds=5)
    late = tmp_path / f"track_recording_bob_screen_video_{int(at.timestamp() * 1000)}.webm"
    synth.make_webm_video(late, 1.0, started_at=at)
    archive_files(backend, SESSION, [*session_files, SegmentFile("bob", "screen_video", 5.0, 1.0, late)])
    again = export_session(backend, SESSION, ExportRequest())
    statuses = {(f.participant_id, f.pair): f.status for f in again.files}
    assert statuses == {
        ("alice", "camera"): "unchanged",
        ("alice", "screen"): "unchanged",
        ("bob", "camera"): "unchanged",
        ("bob", "screen"): "written",
    }


def test_out_writes_elsewhere_and_leaves_the_manifest_alone(
    archived: Callable, backend_factory: Callable
) -> None:
    _, backend = archived("local")
    elsewhere: Backend = backend_factory("local")
    report = export_session(backend, SESSION, ExportRequest(participants=("bob",)), out=elsewhere)
    assert [f.key for f in report.files] == [f"{SESSION}/bob.camera.copy.mkv"]
    assert elsewhere.stat(f"{SESSION}/bob.camera.copy.mkv") is not None
    # On local disk the file is shown as a path: a file:// URL would read the % in keys as escapes.
    assert report.files[0].url == str(elsewhere.local_path(f"{SESSION}/bob.camera.copy.mkv"))
    manifest, _ = read_manifest(backend, SESSION)
    assert manifest is not None and manifest.exports == []
    assert list(backend.list(export_prefix(SESSION))) == []
    again = export_session(backend, SESSION, ExportRequest(participants=("bob",)), out=elsewhere)
    assert [f.status for f in again.files] == ["unchanged"]


def test_sync_copies_exports_to_s3_and_the_copy_finds_them(
    archived: Callable, backend_factory: Callable
) -> None:
    _, source = archived("local")
    export_session(source, SESSION, ExportRequest(participants=("bob",), mode="normalize"))
    dest: Backend = backend_factory("s3")
    report = sync(source, dest, SyncOptions())
    assert not report.failed, report.items
    manifest, _ = read_manifest(dest, SESSION)
    assert manifest is not None
    (entry,) = manifest.exports
    assert dest.stat(entry.key) is not None and dest.stat(entry.key).sha256 == entry.sha256
    # On the copy, the same request finds its export unchanged instead of re-encoding it.
    again = export_session(dest, SESSION, ExportRequest(participants=("bob",), mode="normalize"))
    assert [f.status for f in again.files] == ["unchanged"]


def test_a_manifest_from_before_exports_still_reads() -> None:
    old = b"""{"schemaVersion": 1, "sessionId": "s", "updatedAt": "2026-01-01T00:00:00Z",
               "participants": {}, "summary": {}, "failures": [], "lifecycle": {},
               "totals": {"segmentCount": 0, "totalBytes": 0, "totalDurationSeconds": 0.0}}"""
    manifest = Manifest.from_json(old)
    assert manifest.exports == []
    assert manifest.updatedAt == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_query_finds_exports_by_session_and_participant(archived: Callable, tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from pipeline.cli import main
    from pipeline.query import list_exports

    target, backend = archived("s3")
    export_session(backend, SESSION, ExportRequest(participants=("bob",), mix=True))
    rows = list_exports(backend, index_path=tmp_path / "index.sqlite3")
    assert sorted((r.participant_id or "", r.pair) for r in rows) == [("", "mix"), ("bob", "camera")]
    assert [r.key for r in list_exports(backend, participant="bob")] == [
        f"{SESSION}/%exports/bob.camera.copy.mkv"
    ]
    config = tmp_path / "config.yaml"
    config.write_text(
        f"backend:\n  url: {target.url}\n  s3:\n    endpoint_url: {target.options.s3.endpoint_url}\n"
        f"    region: {target.options.s3.region}\nstate:\n  journal: {tmp_path / 'j.sqlite3'}\n"
    )
    result = CliRunner().invoke(main, ["exports", "--config", str(config), "--session", SESSION, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert {r["pair"] for r in json.loads(result.stdout)} == {"camera", "mix"}
