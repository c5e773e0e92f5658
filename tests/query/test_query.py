from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.cli.query_cmds import commands, segments, sessions
from pipeline.cli.sync_cmds import sync
from pipeline.manifest import ManifestUpdate, update_manifest
from pipeline.query import ManifestIndex, list_segments, list_sessions
from storage_backends import Backend
from tests.fixtures.backends import StorageTarget, local_root
from tests.sync.builders import ProxyBackend, build_session, put_segment

DAY1 = int(datetime(2026, 5, 4, 9, 0, tzinfo=UTC).timestamp() * 1000)
DAY2 = int(datetime(2026, 5, 5, 9, 0, tzinfo=UTC).timestamp() * 1000)
DAY3 = int(datetime(2026, 5, 6, 9, 0, tzinfo=UTC).timestamp() * 1000)


def make_archive(backend: Backend, tmp: Path) -> None:
    build_session(backend, tmp, "mon", {("alice", "audio"): 2, ("bob", "video"): 1}, start_ms=DAY1)
    build_session(
        backend,
        tmp,
        "tue",
        {("alice", "audio"): 1, ("carol", "screen_video"): 1},
        start_ms=DAY2,
        failures=2,
    )
    build_session(backend, tmp, "wed", {("bob", "audio"): 3}, start_ms=DAY3)


@pytest.fixture
def archive(make_storage_target: Callable[[str], StorageTarget], tmp_path: Path) -> StorageTarget:
    target = make_storage_target("local")
    with target.open() as backend:
        make_archive(backend, tmp_path)
    return target


def test_sessions_rows_and_date_filters(archive: StorageTarget) -> None:
    with archive.open() as backend:
        rows = list_sessions(backend)
        assert [r.session_id for r in rows] == ["mon", "tue", "wed"]
        tue = rows[1]
        assert tue.participants == ("alice", "carol")
        assert tue.segments_by_kind == {"audio": 1, "screen_video": 1}
        assert (tue.segment_count, tue.failures, tue.duration_seconds) == (2, 2, 2.0)
        assert tue.bytes == sum(
            s.size for s in backend.list("tue/") if s.key != "tue/manifest.json"
        )
        assert tue.started_at == datetime(2026, 5, 5, 9, 0, tzinfo=UTC)

        assert [r.session_id for r in list_sessions(backend, since=date(2026, 5, 5))] == [
            "tue",
            "wed",
        ]
        assert [r.session_id for r in list_sessions(backend, until=date(2026, 5, 5))] == [
            "mon",
            "tue",
        ]
        moment = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)
        assert [r.session_id for r in list_sessions(backend, until=moment)] == ["mon"]


def test_segments_filters_and_recording_order(archive: StorageTarget) -> None:
    with archive.open() as backend:
        everything = list_segments(backend)
        assert len(everything) == 8
        starts = [r.started_at for r in everything]
        assert starts == sorted(starts)  # type: ignore[type-var]  # all known here
        alice = list_segments(backend, participant="alice")
        assert [(r.session_id, r.kind) for r in alice] == [
            ("mon", "audio"),
            ("mon", "audio"),
            ("tue", "audio"),
        ]
        assert [r.session_id for r in list_segments(backend, kind="video")] == ["mon"]
        bob_wed = list_segments(backend, session="wed", participant="bob", kind="audio")
        assert len(bob_wed) == 3 and all(backend.stat(r.key) is not None for r in bob_wed)
        assert list_segments(backend, session="nope") == []


def test_index_rereads_only_changed_manifests(archive: StorageTarget, tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    with archive.open() as real:
        counted = ProxyBackend(real)
        with ManifestIndex(path) as index:
            assert index.refresh(counted).read == 3
        assert counted.calls["get_bytes"] == 3

        counted.calls.clear()
        assert len(list_segments(counted, index_path=path)) == 8
        assert counted.calls.get("get_bytes", 0) == 0  # warm: nothing re-read

        late = put_segment(
            real, tmp_path, "tue", "dan", "audio", 7, b"late" * 10, started_ms=DAY2 + 3_600_000
        )
        update_manifest(real, ManifestUpdate(session_id="tue", segments=[late]))
        counted.calls.clear()
        tue = list_segments(counted, session="tue", index_path=path)
        assert counted.calls["get_bytes"] == 1
        assert [r.participant_id for r in tue] == ["alice", "carol", "dan"]

        real.delete("wed/manifest.json")
        with ManifestIndex(path) as index:
            stats = index.refresh(counted)
        assert (stats.read, stats.dropped, stats.unchanged) == (0, 1, 2)
        assert [r.session_id for r in list_sessions(counted, index_path=path)] == ["mon", "tue"]


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"state:\n  journal: {tmp_path / 'state' / 'journal.sqlite3'}\n")
    return config


def test_cli_queries_in_every_format(archive: StorageTarget, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--backend", archive.url, "--config", str(_config(tmp_path))]

    result = runner.invoke(sessions, [*base, "--format", "json", "--since", "2026-05-05"])
    assert result.exit_code == 0, result.output
    assert [r["sessionId"] for r in json.loads(result.output)] == ["tue", "wed"]

    result = runner.invoke(sessions, [*base, "--format", "csv", "--until", "2026-05-04"])
    assert result.exit_code == 0, result.output
    assert [r["sessionId"] for r in csv.DictReader(io.StringIO(result.output))] == ["mon"]

    result = runner.invoke(sessions, [*base])
    assert result.exit_code == 0 and "3 sessions" in result.output and "tue" in result.output

    result = runner.invoke(
        segments, [*base, "--participant", "alice", "--kind", "audio", "--format", "csv"]
    )
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["sessionId"], r["participantId"]) for r in rows] == [("mon", "alice")] * 2 + [
        ("tue", "alice")
    ]

    result = runner.invoke(segments, [*base, "--session", "wed", "--format", "json"])
    assert [r["participantId"] for r in json.loads(result.output)] == ["bob"] * 3

    result = runner.invoke(segments, [*base, "--session", "mon"])
    assert result.exit_code == 0 and "3 segments" in result.output and "alice" in result.output
    assert (tmp_path / "state" / "index").is_dir()

    result = runner.invoke(sessions, [*base, "--since", "last tuesday"])
    assert result.exit_code == 2


def test_cli_sync_json_and_exit_codes(
    archive: StorageTarget, make_storage_target: Callable[[str], StorageTarget], tmp_path: Path
) -> None:
    runner = CliRunner()
    dest = make_storage_target("local")
    config = ["--config", str(_config(tmp_path))]

    dry = runner.invoke(sync, [archive.url, dest.url, "--dry-run", "--json", *config])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["copied"] == 11
    assert not any(local_root(dest).iterdir())

    done = runner.invoke(sync, [archive.url, dest.url, "--json", "--concurrency", "3", *config])
    summary = json.loads(done.output)
    assert {k: summary[k] for k in ("copied", "skipped", "conflicts", "deleted", "failed")} == {
        "copied": 11, "skipped": 0, "conflicts": 0, "deleted": 0, "failed": 0,
    }  # fmt: skip
    assert done.exit_code == 0

    victim = next(local_root(dest).glob("mon/alice/audio/*.webm"))
    with archive.open() as src:
        key = victim.relative_to(local_root(dest)).as_posix()
        src.delete(key)
        put_segment(
            src,
            tmp_path,
            "mon",
            "alice",
            "audio",
            1,
            b"other" * 30,
            started_ms=int(victim.name.rsplit("_", 1)[1].split(".")[0]),
        )
    conflict = runner.invoke(sync, [archive.url, dest.url, *config])
    assert conflict.exit_code == 1
    assert "conflict" in conflict.output and key in conflict.output

    bad = runner.invoke(sync, [archive.url, "ftp://nowhere/x", *config])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_tables_show_ids_as_they_are_never_as_markup_or_emoji(
    make_storage_target: Callable[[str], StorageTarget], tmp_path: Path
) -> None:
    target = make_storage_target("local")
    with target.open() as backend:
        build_session(
            backend, tmp_path, "room[b]7[/b]:ok:", {("ann[red]", "audio"): 1}, meeting="m[i]1"
        )
    runner = CliRunner()
    config = ["--config", str(_config(tmp_path))]
    listed = runner.invoke(sessions, ["--backend", target.url, *config])
    assert listed.exit_code == 0, listed.output
    assert "room[b]7[/b]:ok:" in listed.output and "m[i]1" in listed.output, listed.output
    rows = runner.invoke(segments, ["--backend", target.url, *config])
    assert rows.exit_code == 0, rows.output
    assert "ann[red]" in rows.output, rows.output


def test_an_empty_root_is_refused_never_read_as_the_configured_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--backend "$ROOT"`` or ``sync "$SRC" "$DST"`` with a variable unset names no root."""
    from storage_backends import open_backend

    monkeypatch.chdir(tmp_path)
    with open_backend(str(tmp_path / "archive")) as configured:  # backend.url's default
        make_archive(configured, tmp_path)
    runner = CliRunner()
    listed = runner.invoke(sessions, ["--backend", "", "--format", "json"])
    assert listed.exit_code == 2 and "empty backend URL" in listed.output, listed.output
    copied = runner.invoke(sync, ["archive", "", "--json"])
    assert copied.exit_code == 2 and "empty backend URL" in copied.output, copied.output
    copied = runner.invoke(sync, ["", str(tmp_path / "copy"), "--json"])
    assert copied.exit_code == 2 and "empty backend URL" in copied.output, copied.output
    assert not (tmp_path / "copy").exists()


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for command in [*commands, sync]:
        result = runner.invoke(command, ["-h"])
        assert result.exit_code == 0 and command.help


def test_a_session_whose_manifest_is_unreadable_is_named_not_silently_left_out(
    archive: StorageTarget, tmp_path: Path
) -> None:
    with archive.open() as backend:
        backend.delete("tue/manifest.json")
        backend.put_bytes("tue/manifest.json", b'{"schemaVersion": 1, "sessionId": 7}')
    runner = CliRunner()
    base = ["--backend", archive.url, "--config", str(_config(tmp_path))]

    for command in ("sessions", "segments", "sessions"):  # the last from the index alone
        result = runner.invoke(main, [command, *base, "--format", "json"])
        assert result.exit_code == 0, result.output
        assert "tue" not in {r["sessionId"] for r in json.loads(result.stdout)}
        assert "tue/manifest.json" in result.stderr and "not a valid manifest" in result.stderr
