"""Reconcile: a recording whose webhooks never came is archived from the listing API."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import main
from pipeline.layout import segment_key
from pipeline.live.recording_api import RecordingApi, StartRequest

from .conftest import TOKEN, StandIn

ROOM = "room-lost"


def _record_without_webhooks(standin: StandIn) -> None:
    with RecordingApi(TOKEN, api_base=standin.url) as api:
        for participant, kind in (("dora", "audio"), ("eve", "screen_video")):
            api.start(StartRequest(room_id=ROOM, participant_id=participant, kind=kind))
            api.stop(ROOM, participant, kind)


def _reconcile(standin: StandIn, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(
        main,
        [
            "reconcile",
            "--room",
            ROOM,
            "--backend",
            str(tmp_path / "archive"),
            "--state",
            str(tmp_path / "journal.sqlite3"),
            "--allow-origin",
            standin.url,
            "--api-base",
            standin.url,
            "--json",
            *extra,
        ],
        env={"VIDEOSDK_TOKEN": TOKEN},
    )
    return result.exit_code, json.loads(result.stdout)


def test_reconcile_archives_what_no_webhook_announced_and_is_idempotent(
    standin: StandIn, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # staging and quarantine default under the working directory
    _record_without_webhooks(standin)
    assert standin.service.deliveries == []
    code, summary = _reconcile(standin, tmp_path)
    assert code == 0, summary
    assert (summary["listed"], summary["queued"], summary["archived"]) == (4, 4, 4)
    assert summary["sizeMismatches"] == [] and summary["durationNotes"] == []
    session = standin.service.session_of(ROOM)
    for recording in standin.service.recordings:
        for listed in recording.files:
            name = listed["filePath"].rsplit("/", 1)[-1]
            key = segment_key(session, recording.participant_id, recording.kind, name)
            archived = tmp_path / "archive" / key
            assert archived.stat().st_size == listed["size"]
    manifest = json.loads((tmp_path / "archive" / session / "manifest.json").read_text())
    assert manifest["totals"]["segmentCount"] == 4

    code, again = _reconcile(standin, tmp_path)
    assert code == 0
    assert (again["listed"], again["present"], again["queued"], again["archived"]) == (4, 4, 0, 0)


def test_reconcile_reports_a_listed_size_that_differs(
    standin: StandIn, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _record_without_webhooks(standin)
    standin.service.recordings[0].files[0]["size"] += 10  # the listing disagrees with the file
    code, summary = _reconcile(standin, tmp_path)
    assert code == 1
    (mismatch,) = summary["sizeMismatches"]
    assert mismatch["participantId"] == "dora"
    assert mismatch["listedSize"] == mismatch["archivedSize"] + 10


def test_reconcile_needs_exactly_one_scope(standin: StandIn, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["reconcile", "--api-base", standin.url], env={"VIDEOSDK_TOKEN": TOKEN}
    )
    assert result.exit_code == 2
    assert standin.service.api_calls == []
