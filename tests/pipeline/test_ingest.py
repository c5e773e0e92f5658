import io
import json

from pipeline.errors import InputError
from pipeline.events import OtherEvent, TrackEvent, parse_event
from pipeline.ingest import RawRecord, read_sources

STOPPED = {
    "webhookType": "participant-track-recording-stopped",
    "data": {
        "meetingId": "m",
        "sessionId": "s",
        "participantId": "p",
        "kind": "audio",
        "fileDetails": [{"filePath": "/x/a.webm", "fileUrl": "https://cdn.videosdk.live/x/a.webm"}],
    },
}


def _records(items):
    items = list(items)
    return [i for i in items if isinstance(i, RawRecord)], [
        i for i in items if isinstance(i, InputError)
    ]


def test_object_array_and_json_lines_are_all_read(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps(STOPPED, indent=2))
    (tmp_path / "many.json").write_text(
        "[\n" + ",\n".join(json.dumps(STOPPED) for _ in range(3)) + "\n]"
    )
    (tmp_path / "lines.jsonl").write_text("\n".join(json.dumps(STOPPED) for _ in range(2)) + "\n")
    (tmp_path / "notes.txt").write_text("ignored")
    records, errors = _records(read_sources([str(tmp_path)]))
    assert errors == []
    assert len(records) == 6
    assert [r.line for r in records if r.source.endswith("many.json")] == [2, 3, 4]


def test_a_bad_line_is_named_and_its_neighbours_survive(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps(STOPPED) + "\n{not json\n" + json.dumps(STOPPED) + "\n")
    records, errors = _records(read_sources([str(path)]))
    assert [r.line for r in records] == [1, 3]
    assert len(errors) == 1 and errors[0].line == 2 and str(path) in str(errors[0])


def test_stdin_is_read(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(STOPPED)))
    records, _ = _records(read_sources(["-"]))
    assert len(records) == 1 and records[0].source == "<stdin>"


def test_a_missing_source_is_an_error_not_a_crash(tmp_path):
    _, errors = _records(read_sources([str(tmp_path / "absent.json")]))
    assert "no such file" in str(errors[0])


def test_every_lifecycle_type_is_understood_and_others_are_set_apart():
    for stage in ("starting", "started", "stopping", "failed"):
        body = {
            "webhookType": f"participant-track-recording-{stage}",
            "data": {k: v for k, v in STOPPED["data"].items() if k != "fileDetails"},
        }
        assert isinstance(parse_event(body, source="f"), TrackEvent)
    assert isinstance(parse_event(STOPPED, source="f"), TrackEvent)
    assert isinstance(
        parse_event({"webhookType": "recording-started", "data": {}}, source="f"), OtherEvent
    )


def test_validation_errors_name_the_field():
    bad = json.loads(json.dumps(STOPPED))
    bad["data"]["kind"] = "hologram"
    try:
        parse_event(bad, source="in.json", line=7)
    except InputError as exc:
        assert "in.json:7" in str(exc) and "data.kind" in str(exc)
    else:
        raise AssertionError("an unknown kind was accepted")
    bad["data"]["kind"] = "audio"
    bad["data"]["fileDetails"][0]["fileUrl"] = "file:///etc/passwd"
    try:
        parse_event(bad, source="in.json", line=7)
    except InputError as exc:
        assert "fileUrl" in str(exc)
    else:
        raise AssertionError("a file: URL was accepted")
