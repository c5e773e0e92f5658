"""A failed row's refusal and a claimed row's verified download, through a real journal file."""

from __future__ import annotations

from pathlib import Path

from pipeline.checks import Check
from pipeline.download.result import DownloadResult
from pipeline.journal import NewSegment, Refusal, SegmentState, SQLiteJournal, VerifiedDownload


def _journal(tmp_path: Path) -> SQLiteJournal:
    journal = SQLiteJournal(tmp_path / "journal.sqlite3", synchronous="OFF")
    journal.add_segments(
        "e1",
        [
            NewSegment(
                segment_id="seg1",
                session_id="s1",
                meeting_id="m",
                participant_id="alice",
                kind="audio",
                source_url="https://cdn.example/1.webm",
                source_path="/1.webm",
                filename="1.webm",
                key="s1/alice/audio/1.webm",
            )
        ],
    )
    return journal


def _download(path: Path | None, *, ok: bool = True) -> DownloadResult:
    return DownloadResult(
        ok=ok,
        reason=None if ok else "size: expected 10, found 3",
        url="https://cdn.example/1.webm",
        path=path,
        size=10,
        sha256="ab" * 32,
        crc32c="AAAAAA==",
        checks=[Check(name="size", ok=ok, expected=10, found=10 if ok else 3)],
    )


def test_a_noted_verified_download_comes_back_with_its_staged_file(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    record = journal.claim("w1", lease_seconds=60)
    assert record is not None and record.verified is None
    staged = tmp_path / "staging" / "seg1.abc.part"
    journal.note_verified("seg1", "w1", VerifiedDownload(_download(staged)))

    (again,) = journal.segments()
    noted = again.verified
    assert noted is not None
    assert noted.staged_name == "seg1.abc.part"
    assert noted.download.sha256 == "ab" * 32 and noted.download.checks[0].found == 10
    journal.close()


def test_a_download_that_failed_its_checks_is_never_resumed(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.claim("w1", lease_seconds=60)
    journal.note_verified("seg1", "w1", VerifiedDownload(_download(None, ok=False)))
    (record,) = journal.segments()
    assert record.verified is None
    journal.close()


def test_a_failed_row_names_its_quarantine_and_refused_download(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.claim("w1", lease_seconds=60)
    refusal = Refusal(quarantine="/q/seg1.bytes", download=_download(None, ok=False))
    journal.finish("seg1", "w1", SegmentState.FAILED, result=refusal.to_json(), error="size")

    (record,) = journal.segments()
    back = record.refusal
    assert back is not None and back.quarantine == "/q/seg1.bytes"
    assert back.download is not None and back.download.reason == "size: expected 10, found 3"
    assert record.stored is None and record.verified is None
    journal.close()


def test_a_failed_row_without_facts_reads_as_an_empty_refusal(tmp_path: Path) -> None:
    # Rows failed before any facts were kept (and by earlier versions) hold no result.
    journal = _journal(tmp_path)
    journal.claim("w1", lease_seconds=60)
    journal.finish("seg1", "w1", SegmentState.FAILED, error="gave up")
    (record,) = journal.segments()
    assert record.refusal == Refusal()
    journal.close()


def test_only_failed_rows_have_a_refusal(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    (record,) = journal.segments()
    assert record.state is SegmentState.PENDING and record.refusal is None
    journal.close()
