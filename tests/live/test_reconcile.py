"""Reconcile: a recording whose webhooks never came is archived from the listing API."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

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


def _reconcile(
    standin: StandIn, tmp_path: Path, *extra: str, scope: tuple[str, ...] = ("--room", ROOM)
) -> tuple[int, dict]:
    result = _invoke(standin, tmp_path, *scope, *extra)
    return result.exit_code, json.loads(result.stdout)


def _invoke(standin: StandIn, tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        [
            "reconcile",
            "--backend",
            str(tmp_path / "archive"),
            "--state",
            str(tmp_path / "journal.sqlite3"),
            "--allow-origin",
            standin.url,
            "--api-base",
            standin.url,
            "--json",
            *args,
        ],
        env={"VIDEOSDK_TOKEN": TOKEN},
    )


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


def test_a_file_shorter_than_listed_is_refused_before_it_is_stored(
    standin: StandIn, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _record_without_webhooks(standin)
    recording = standin.service.recordings[0]
    recording.files[0]["size"] += 10  # the listing says the file is longer than what is served
    code, summary = _reconcile(standin, tmp_path)
    assert code == 1
    assert summary["archived"] == 3 and summary["failed"] == 1
    (failure,) = summary["failures"]
    assert failure["participantId"] == "dora" and "expected_size" in failure["reason"]
    name = recording.files[0]["filePath"].rsplit("/", 1)[-1]
    key = segment_key(standin.service.session_of(ROOM), "dora", recording.kind, name)
    assert not (tmp_path / "archive" / key).exists()


def test_reconcile_of_a_session_sends_its_room(
    standin: StandIn, tmp_path: Path, monkeypatch
) -> None:
    # The listing API marks roomId required (the stand-in refuses a listing without it).
    monkeypatch.chdir(tmp_path)
    _record_without_webhooks(standin)
    session = standin.service.session_of(ROOM)
    unknown = _invoke(standin, tmp_path, "--session", session)
    assert unknown.exit_code == 2 and "give --room with --session" in unknown.output
    code, summary = _reconcile(standin, tmp_path, scope=("--room", ROOM, "--session", session))
    assert code == 0, summary
    assert (summary["listed"], summary["archived"]) == (4, 4)
    # Now the session's manifest names its room: --session alone is enough.
    code, again = _reconcile(standin, tmp_path, scope=("--session", session))
    assert code == 0, again
    assert (again["listed"], again["present"], again["queued"]) == (4, 4, 0)
    other = _invoke(standin, tmp_path, "--room", ROOM, "--session", "no-such-session")
    assert other.exit_code == 0 and json.loads(other.stdout)["listed"] == 0


def test_reconcile_needs_a_room_or_a_session(standin: StandIn, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["reconcile", "--api-base", standin.url], env={"VIDEOSDK_TOKEN": TOKEN}
    )
    assert result.exit_code == 2
    assert standin.service.api_calls == []


def test_a_file_that_vanished_from_the_archive_is_archived_again(
    standin: StandIn, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _record_without_webhooks(standin)
    code, _ = _reconcile(standin, tmp_path)
    assert code == 0
    session = standin.service.session_of(ROOM)
    recording = standin.service.recordings[0]
    listed = recording.files[0]
    name = listed["filePath"].rsplit("/", 1)[-1]
    archived = (
        tmp_path / "archive" / segment_key(session, recording.participant_id, recording.kind, name)
    )
    archived.unlink()  # lost from the archive (deleted by hand, a bucket rule, a bad restore)

    code, again = _reconcile(standin, tmp_path)

    # The journal remembers the file as archived; the archive is what counts.
    assert code == 0, again
    assert (again["present"], again["queued"], again["archived"]) == (3, 1, 1)
    assert archived.stat().st_size == listed["size"]
