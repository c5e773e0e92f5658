"""Saved webhooks that Python's own parser trips on, or that are broken part-way: each bad
record is named with its file and line, and every good record beside it is still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.events import TrackEvent, parse_event
from pipeline.ingest import RawRecord, read_sources

STARTED = {
    "webhookType": "participant-track-recording-started",
    "data": {"meetingId": "m", "sessionId": "s", "participantId": "p", "kind": "audio"},
}
GOOD = json.dumps(STARTED)
DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = GOOD[:-2] + ', "n": ' + "9" * 10_000 + "}}"
LONE_SURROGATE = GOOD.replace('"p"', '"\\ud800"')


def _read(*paths: Path) -> tuple[list[RawRecord], list[InputError]]:
    items = list(read_sources([str(p) for p in paths]))
    return [i for i in items if isinstance(i, RawRecord)], [
        i for i in items if isinstance(i, InputError)
    ]


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        (DEEP, "nested deeper than"),
        (HUGE_INT, "integer of 10000 digits"),
        (LONE_SURROGATE, "field data.participantId: not valid Unicode"),
    ],
)
def test_valid_json_the_parser_rejects_costs_only_its_record(
    tmp_path: Path, hostile: str, reason: str
) -> None:
    array = tmp_path / "array.json"
    array.write_text(f"[\n{GOOD},\n{hostile},\n{GOOD}\n]\n")
    lines = tmp_path / "lines.jsonl"
    lines.write_text(f"{GOOD}\n{hostile}\n{GOOD}\n")
    single = tmp_path / "single.json"
    single.write_text(hostile)
    records, errors = _read(array, lines, single)
    assert [(Path(r.source).name, r.line) for r in records] == [
        ("array.json", 2),
        ("array.json", 4),
        ("lines.jsonl", 1),
        ("lines.jsonl", 3),
    ]
    assert [(Path(e.source).name, e.line) for e in errors] == [
        ("array.json", 3),
        ("lines.jsonl", 2),
        ("single.json", 1),
    ]
    assert all(reason in e.reason for e in errors)


def test_a_broken_first_line_of_json_lines_loses_only_itself(tmp_path: Path) -> None:
    # Also when the file is named .json: the later lines still show it is JSON Lines.
    for name in ("first.jsonl", "first.json"):
        (tmp_path / name).write_text("{broken\n" + GOOD + "\n\n" + GOOD + "\n")
    records, errors = _read(tmp_path / "first.jsonl", tmp_path / "first.json")
    assert [r.line for r in records] == [2, 4, 2, 4]
    assert [e.line for e in errors] == [1, 1]
    assert "not valid JSON" in errors[0].reason


def test_a_syntax_error_inside_an_array_does_not_drop_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    broken = GOOD.replace('"kind"', '"kind" "x"')  # a missing ':' inside the second record
    path.write_text("[\n" + ",\n".join([GOOD, broken, GOOD, GOOD]) + "\n]\n")
    records, errors = _read(path)
    assert [r.line for r in records] == [2, 4, 5]
    assert len(errors) == 1 and errors[0].line == 3 and str(path) in str(errors[0])


def test_an_array_broken_beyond_repair_says_how_many_records_it_skipped(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    unterminated = GOOD.replace('"m"', '"m')  # a string never closed: no next record to find
    path.write_text("[\n" + ",\n".join([GOOD, unterminated, GOOD, GOOD]) + "\n]\n")
    records, errors = _read(path)
    assert [r.line for r in records] == [2]
    assert len(errors) == 1 and errors[0].line == 3
    assert "lines 3-6 skipped (about 3 records)" in errors[0].reason


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + (GOOD + "\n" + GOOD).encode())
    records, errors = _read(tmp_path)
    assert errors == [] and len(records) == 3


def test_a_byte_that_is_not_utf8_loses_only_its_record(tmp_path: Path) -> None:
    bad = GOOD.replace('"s"', '"s\xff"').encode("latin-1")
    (tmp_path / "lines.jsonl").write_bytes(b"\n".join([GOOD.encode(), bad, GOOD.encode()]))
    (tmp_path / "array.json").write_bytes(
        b"[" + b",\n".join([GOOD.encode(), bad, GOOD.encode()]) + b"]"
    )
    records, errors = _read(tmp_path / "lines.jsonl", tmp_path / "array.json")
    assert [r.line for r in records] == [1, 3, 1, 3]
    assert [e.line for e in errors] == [2, 2]
    assert all("byte 0xff is not UTF-8" in e.reason for e in errors)
    assert all("\udcff" not in json.dumps(r.payload) for r in records)


def test_validation_messages_name_the_exact_field() -> None:
    details = [{"fileUrl": f"https://cdn.example/{n}.webm"} for n in range(3)]
    details[2]["fileUrl"] = "ftp://cdn.example/2.webm"
    body = {**STARTED, "webhookType": "participant-track-recording-stopped"}
    body["data"] = {**STARTED["data"], "fileDetails": details}
    with pytest.raises(InputError, match=r"w\.json:4: field data\.fileDetails\[2\]\.fileUrl:"):
        parse_event(body, source="w.json", line=4)
    details[2] = {"fileUrl": "https://cdn.example/", "filePath": "/"}
    with pytest.raises(InputError, match=r"field data\.fileDetails\[2\]: neither filePath"):
        parse_event(body, source="w.json", line=4)


def test_an_id_that_cannot_become_a_key_is_blamed_on_its_own_field() -> None:
    stopped = {
        "webhookType": "participant-track-recording-stopped",
        "data": {
            **STARTED["data"],
            "fileDetails": [
                {"fileUrl": "https://cdn.example/a.webm"},
                {"fileUrl": "https://cdn.example/b.webm", "filePath": "/x/" + "b" * 300 + ".webm"},
            ],
        },
    }
    with pytest.raises(InputError, match=r"field data\.fileDetails\[1\]\.filePath: filename"):
        parse_event(stopped, source="w.json")
    for field in ("sessionId", "participantId"):
        body = {**stopped, "data": {**stopped["data"], field: "x" * 300}}
        with pytest.raises(InputError, match=rf"field data\.{field}: {field} is too long"):
            parse_event(body, source="w.json")


def test_a_lone_surrogate_is_found_wherever_the_value_came_from() -> None:
    # A decoded value handed over directly (not read by the bounded decoder) is checked too.
    nested = {**STARTED, "extra": [{"note\udc80": "x"}]}
    with pytest.raises(InputError, match=r"field extra\[0\]\.note\\udc80: not valid Unicode"):
        parse_event(nested, source="test")
    lone = {**STARTED, "data": {**STARTED["data"], "participantId": "p\ud800"}}
    with pytest.raises(InputError, match=r"field data\.participantId: not valid Unicode"):
        parse_event(lone, source="test")


def test_text_that_only_spells_an_escape_is_an_ordinary_string() -> None:
    # A backslash, then "ud800": six ordinary characters, not a surrogate.
    spelled = {**STARTED, "data": {**STARTED["data"], "participantId": "p\\ud800"}}
    event = parse_event(spelled, source="test")
    assert isinstance(event, TrackEvent) and event.data.participantId == "p\\ud800"
