from datetime import UTC, datetime
from pathlib import Path

from pipeline.checks import Check
from pipeline.download import DownloadResult, StreamSummary


def test_a_journaled_result_rebuilds_equal_to_the_original():
    original = DownloadResult(
        ok=True,
        reason=None,
        url="https://cdn/a.webm",
        final_url="https://cdn/a.webm",
        path=Path("/s/a.part"),
        size=10,
        sha256="ab" * 32,
        crc32c="AAAAAA==",
        md5="cd" * 16,
        container="webm",
        streams=[StreamSummary(type="audio", codec="opus")],
        duration_seconds=1.5,
        started_at=datetime(2026, 11, 2, 15, 0, tzinfo=UTC),
        attempts=2,
        bytes_transferred=12,
        checks=[Check(name="transport", ok=True, expected=10, found=10)],
    )
    assert DownloadResult.from_dict(original.as_dict(), path=Path("/s/a.part")) == original
