"""A new user's ``archive`` over a directory holding hostile webhooks beside normal ones."""

from __future__ import annotations

import json

import pytest

from pipeline.manifest import read_manifest

from .conftest import serve_meeting


@pytest.mark.parametrize("target", ["local"], indirect=True)
def test_normal_webhooks_archive_and_hostile_ones_are_named(
    meeting, origin, run_archive, archived, tmp_path
):
    bodies = serve_meeting(origin, meeting)
    inbox = tmp_path / "webhooks"
    inbox.mkdir()
    half = len(bodies) // 2
    (inbox / "a-normal.json").write_text(json.dumps(bodies[:half], indent=2))
    started = json.dumps({**bodies[0], "webhookType": "participant-track-recording-started"})
    (inbox / "b-deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (inbox / "c-huge.json").write_text(started[:-2] + ', "n": ' + "7" * 5000 + "}}")
    (inbox / "d-surrogate.jsonl").write_text(started.replace('"data"', '"\\udfff"') + "\n")
    (inbox / "e-bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(bodies[half]).encode())
    (inbox / "f-lines.jsonl").write_text(
        '{"webhookType": \n' + "".join(json.dumps(b) + "\n" for b in bodies[half + 1 :])
    )

    run = run_archive(inbox)

    assert run.exit_code == 1, run.result.output
    summary = run.summary
    assert summary["archived"] == len(meeting.segments) and summary["failed"] == 0
    manifest, _ = read_manifest(archived, meeting.session_id)
    assert manifest is not None and manifest.totals.segmentCount == len(meeting.segments)
    errors = sorted(summary["inputErrors"])
    assert len(errors) == 4
    assert f"{inbox / 'b-deep.json'}:1: nested deeper than" in errors[0]
    assert f"{inbox / 'c-huge.json'}:1: an integer of 5000 digits" in errors[1]
    assert f"{inbox / 'd-surrogate.jsonl'}:1: field \\udfff: not valid Unicode" in errors[2]
    assert f"{inbox / 'f-lines.jsonl'}:1: not valid JSON" in errors[3]
    assert "Traceback" not in run.result.output
