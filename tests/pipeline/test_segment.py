from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.archive.manifests import flush_manifests
from pipeline.checks import Check
from pipeline.journal import NewSegment, SegmentState, SQLiteJournal
from pipeline.manifest import read_manifest
from pipeline.segment import (
    SegmentStart,
    StartSource,
    StoredSegment,
    StreamSummary,
    content_type_for,
)
from storage_backends import BackendOptions, LocalOptions, open_backend

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
NAME_MS = 1_714_555_815_250
NAMED = f"track_recording_p_audio_{NAME_MS}.webm"

#: A DONE row's result exactly as the first released version wrote it (no ``already``),
#: its ``started_at`` taken from the URL's name by the download engine of the time.
OLD_ROW = {
    "ok": True,
    "reason": None,
    "url": "https://cdn.example/rec/seg.webm",
    "final_url": "https://cdn.example/rec/seg.webm",
    "size": 1234,
    "sha256": "ab" * 32,
    "crc32c": "AAAAAA==",
    "md5": None,
    "container": "webm",
    "streams": [{"type": "audio", "codec": "opus"}],
    "duration_seconds": 2.5,
    "started_at": "2026-11-02T15:00:00+00:00",
    "attempts": 1,
    "bytes_transferred": 1234,
    "checks": [{"name": "size", "ok": True, "expected": 1234, "found": 1234, "detail": None}],
    "key": "s/p/audio/seg.webm",
    "conflict_with": None,
    "archived_at": "2026-11-02T15:01:00.123000+00:00",
}


def _stored(**changes: object) -> StoredSegment:
    fields: dict[str, object] = {
        "key": "s/p/audio/a.webm",
        "size": 10,
        "sha256": "cd" * 32,
        "crc32c": "AAAAAA==",
        "archived_at": T0,
        "url": "https://cdn.example/a.webm",
        "final_url": "https://cdn.example/a.webm",
        "md5": "ef" * 16,
        "container": "webm",
        "streams": (StreamSummary("audio", "opus"), StreamSummary("video", "vp8")),
        "duration_seconds": 1.5,
        "media_started_at": T0,
        "conflict_with": "s/p/audio/b.webm",
        "already": True,
        "attempts": 2,
        "bytes_transferred": 12,
        "checks": (Check(name="transport", ok=True, expected=10, found=10),),
    }
    fields.update(changes)
    return StoredSegment(**fields)  # type: ignore[arg-type]  # test builds from a mapping


def test_a_stored_segment_survives_the_journals_json_unchanged() -> None:
    stored = _stored()
    assert StoredSegment.from_json(json.loads(json.dumps(stored.to_json()))) == stored


def test_the_journal_form_keeps_the_keys_earlier_versions_wrote() -> None:
    written = _stored(already=False, conflict_with=None).to_json()
    assert set(OLD_ROW) | {"already"} == set(written)


def test_a_row_missing_a_required_fact_names_it() -> None:
    row = dict(OLD_ROW)
    del row["sha256"]
    with pytest.raises(ValueError, match="sha256"):
        StoredSegment.from_json(row)


def test_an_old_journal_row_still_loads_and_reaches_the_manifest(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "journal.sqlite3")
    try:
        journal.record_event(event_id="e1", webhook_type="t", payload={}, source="old")
        job = NewSegment(
            segment_id="seg1",
            session_id="s",
            meeting_id="m",
            participant_id="p",
            kind="audio",
            source_url=OLD_ROW["url"],  # type: ignore[arg-type]  # a str in OLD_ROW
            source_path=None,
            filename="seg.webm",
            key="s/p/audio/seg.webm",
        )
        journal.add_segments("e1", [job])
        claimed = journal.claim("w", lease_seconds=60)
        assert claimed is not None
        journal.finish("seg1", "w", SegmentState.DONE, result=OLD_ROW)
        (record,) = journal.segments(states=(SegmentState.DONE,))
        stored = record.stored
        assert stored is not None
        assert (stored.key, stored.size, stored.already) == ("s/p/audio/seg.webm", 1234, False)
        assert stored.streams == (StreamSummary("audio", "opus"),)
        backend = open_backend(
            str(tmp_path / "archive"), BackendOptions(local=LocalOptions(fsync=False))
        )
        with backend:
            flush_manifests(backend, journal)
            manifest, _ = read_manifest(backend, "s")
    finally:
        journal.close()
    assert manifest is not None
    ((pid, kind, entry),) = manifest.segments()
    assert (pid, kind, entry.key, entry.size, entry.sha256) == (
        "p",
        "audio",
        stored.key,
        1234,
        stored.sha256,
    )
    assert entry.startedAt == T0 and entry.startedAtMs is None  # no epoch in either name
    assert entry.archivedAt == datetime(2026, 11, 2, 15, 1, 0, 123000, tzinfo=UTC)


def test_the_name_the_webhook_gave_comes_first() -> None:
    start = _stored(media_started_at=T0).start(NAMED)
    assert start.source is StartSource.NAME
    assert start.epoch_ms == NAME_MS
    assert start.at == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=NAME_MS)


def test_the_urls_name_counts_when_the_webhooks_name_has_no_epoch() -> None:
    stored = _stored(final_url=f"https://cdn.example/x/{NAMED}?sig=1", media_started_at=T0)
    start = stored.start("recording.webm")
    assert (start.source, start.epoch_ms) == (StartSource.NAME, NAME_MS)


def test_the_medias_stated_start_comes_next_then_arrival() -> None:
    media = _stored(media_started_at=T0).start("recording.webm")
    assert (media.source, media.at, media.epoch_ms) == (
        StartSource.MEDIA,
        T0,
        int(T0.timestamp() * 1000),
    )
    unknown = _stored(media_started_at=None).start("recording.webm")
    assert (unknown.source, unknown.at, unknown.epoch_ms) == (StartSource.ARRIVAL, None, None)


def test_known_starts_sort_in_time_before_unknown_ones_by_arrival() -> None:
    late = SegmentStart.derive(
        names=[NAMED.replace(str(NAME_MS), str(NAME_MS + 1))], media_started_at=None
    )
    early = SegmentStart.derive(names=[NAMED], media_started_at=None)
    unknown = SegmentStart.derive(names=[], media_started_at=None)
    keys = sorted(
        [
            (late.order_key(1, "l"), "late"),
            (unknown.order_key(0, "u"), "unknown"),
            (early.order_key(2, "e"), "early"),
        ]
    )
    assert [name for _, name in keys] == ["early", "late", "unknown"]


def test_one_media_type_table_for_stored_and_copied_objects() -> None:
    assert content_type_for("s/p/audio/a.bin", "matroska") == "video/x-matroska"
    assert content_type_for("s/p/audio/a.webm", "unknown") == "application/octet-stream"
    assert content_type_for("s/p/audio/a.webm") == "video/webm"
    assert content_type_for("s/p/audio/a.mp4") == "video/mp4"
    assert content_type_for("s/p/audio/a") == "application/octet-stream"
