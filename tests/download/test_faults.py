"""Each fault of a real origin ends in the right outcome: recovered byte-identical, or failed
with a clear reason and the staged bytes kept."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from pathlib import Path

from pipeline.download import Downloader, DownloadResult
from tests.download.conftest import fast_policy, sha256_of
from tests.fixtures.origin import Origin


async def fetch(origin: Origin, path: str, dest: Path, **policy: object) -> DownloadResult:
    async with Downloader(fast_policy(origin, **policy)) as downloader:
        return await downloader.fetch(origin.url_for(path), dest, kind="video")


async def test_a_drop_mid_body_resumes_with_a_range_and_if_range(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    data = webm_video.read_bytes()
    origin.add("v.webm", data, drop_after=len(data) // 2)
    result = await fetch(origin, "v.webm", tmp_path / "v.webm")
    assert result.ok, result.reason
    assert result.sha256 == hashlib.sha256(data).hexdigest() == sha256_of(tmp_path / "v.webm")
    first, second = origin.requests
    assert "range" not in first.headers
    assert second.headers["range"] == f"bytes={len(data) // 2}-"
    assert second.headers["if-range"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert result.bytes_transferred == len(data)  # nothing fetched twice
    assert result.attempts == 2


async def test_without_a_validator_a_drop_restarts_from_byte_zero(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    data = webm_video.read_bytes()
    origin.add("v.webm", data, drop_after=len(data) // 2, validators=False)
    result = await fetch(origin, "v.webm", tmp_path / "v.webm")
    assert result.ok, result.reason
    assert sha256_of(tmp_path / "v.webm") == hashlib.sha256(data).hexdigest()
    assert all("range" not in seen.headers for seen in origin.requests)


async def test_200_instead_of_206_starts_over_and_still_ends_identical(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    data = webm_video.read_bytes()
    origin.add("v.webm", data, drop_after=len(data) // 3, ignore_range=True)
    result = await fetch(origin, "v.webm", tmp_path / "v.webm")
    assert result.ok, result.reason
    assert origin.requests[1].headers["range"] == f"bytes={len(data) // 3}-"
    assert sha256_of(tmp_path / "v.webm") == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)


async def test_503_with_retry_after_is_honoured(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    origin.add("v.webm", webm_video.read_bytes(), fail_statuses=[503], retry_after="1")
    started = time.monotonic()
    result = await fetch(origin, "v.webm", tmp_path / "v.webm")
    assert result.ok, result.reason
    assert time.monotonic() - started >= 1.0  # the backoff alone would be < 0.05 s
    assert result.attempts == 2


async def test_429_then_success(origin: Origin, webm_video: Path, tmp_path: Path) -> None:
    origin.add("v.webm", webm_video.read_bytes(), fail_statuses=[429, 429])
    result = await fetch(origin, "v.webm", tmp_path / "v.webm")
    assert result.ok, result.reason
    assert result.attempts == 3


async def test_a_persistent_500_gives_up_after_max_attempts(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    origin.add("v.webm", webm_video.read_bytes(), fail_statuses=[500] * 10)
    result = await fetch(origin, "v.webm", tmp_path / "v.webm", max_attempts=3)
    assert not result.ok
    assert "gave up after 3 requests" in (result.reason or "") and "HTTP 500" in (
        result.reason or ""
    )
    assert origin.hits("v.webm") == 3


async def test_404_during_the_grace_period_then_200_recovers(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    origin.add("v.webm", webm_video.read_bytes(), fail_statuses=[404, 404, 403])
    result = await fetch(origin, "v.webm", tmp_path / "v.webm", not_found_grace=5.0)
    assert result.ok, result.reason
    assert origin.hits("v.webm") == 4


async def test_404_beyond_the_grace_period_fails(origin: Origin, tmp_path: Path) -> None:
    started = time.monotonic()
    result = await fetch(origin, "missing.webm", tmp_path / "m.webm", not_found_grace=0.5)
    assert not result.ok
    # The time named is measured, so on a busy machine it can be past the grace.
    assert re.search(r"HTTP 404 for \d+\.\d s \(not_found_grace 0\.5 s\)", result.reason or "")
    assert time.monotonic() - started >= 0.5  # it kept asking for the whole grace period
    assert origin.hits("missing.webm") >= 2


async def test_a_slow_drip_is_cut_by_the_throughput_guard(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    origin.add("v.webm", webm_video.read_bytes(), drip=(50, 0.01))
    result = await fetch(
        origin, "v.webm", tmp_path / "v.webm", min_throughput=100_000, max_attempts=2
    )
    assert not result.ok
    assert "below min_throughput 100000 B/s" in (result.reason or "")
    assert (tmp_path / "v.webm").stat().st_size > 0  # what arrived is kept


async def test_the_overall_deadline_stops_a_drip_that_keeps_the_throughput_guard_happy(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    origin.add("v.webm", webm_video.read_bytes(), drip=(100, 0.02))
    result = await fetch(origin, "v.webm", tmp_path / "v.webm", deadline=0.5)
    assert not result.ok
    assert result.checks[0].name == "deadline"
    assert "done within 0.5 s" in (result.reason or "")


async def test_a_content_length_larger_than_the_file_fails_naming_both_sizes(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    data = webm_video.read_bytes()
    origin.add("v.webm", data, advertise_length=len(data) + 500)
    result = await fetch(origin, "v.webm", tmp_path / "v.webm")
    assert not result.ok
    assert f"declared {len(data) + 500} bytes but holds {len(data)}" in (result.reason or "")
    assert (tmp_path / "v.webm").read_bytes() == data  # staged bytes kept for quarantine


async def test_a_content_length_shorter_than_the_file_is_caught_by_the_etag(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    data = webm_video.read_bytes()
    origin.add("v.webm", data, advertise_length=len(data) - 100)
    result = await fetch(origin, "v.webm", tmp_path / "v.webm")
    assert not result.ok
    assert "source_checksum:ETag" in (result.reason or "")
    assert "also after downloading again from scratch" in (result.reason or "")
    assert origin.hits("v.webm") == 2


async def test_a_wrong_etag_is_downloaded_once_more_then_fails_keeping_the_bytes(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    data = webm_video.read_bytes()
    origin.add("v.webm", data, etag='"' + "0" * 32 + '"')
    result = await fetch(origin, "v.webm", tmp_path / "v.webm")
    assert not result.ok
    assert f"expected 'md5={'0' * 32}', found 'md5={hashlib.md5(data).hexdigest()}'" in (
        result.reason or ""
    )
    assert origin.hits("v.webm") == 2
    assert (tmp_path / "v.webm").read_bytes() == data


async def test_x_goog_hash_is_checked(origin: Origin, webm_video: Path, tmp_path: Path) -> None:
    data = webm_video.read_bytes()
    origin.add("good.webm", data, goog_hash=True, validators=False)
    origin.add("bad.webm", data, validators=False, headers={"x-goog-hash": "crc32c=AAAAAA=="})
    good = await fetch(origin, "good.webm", tmp_path / "good.webm")
    bad = await fetch(origin, "bad.webm", tmp_path / "bad.webm")
    assert good.ok, good.reason
    assert {c.name for c in good.checks} >= {"source_checksum:x-goog-hash"}
    assert good.md5 == hashlib.md5(data).hexdigest()
    assert not bad.ok and "crc32c=AAAAAA==" in (bad.reason or "")


async def test_a_chain_of_five_redirects_is_followed(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    origin.add("v.webm", webm_video.read_bytes())
    for hop in range(5):
        origin.redirect(f"r{hop}", f"/r{hop + 1}" if hop < 4 else origin.url_for("v.webm"))
    result = await fetch(origin, "r0", tmp_path / "v.webm")
    assert result.ok, result.reason
    assert result.final_url == origin.url_for("v.webm")


async def test_a_sixth_redirect_is_refused(origin: Origin, tmp_path: Path) -> None:
    for hop in range(7):
        origin.redirect(f"r{hop}", f"/r{hop + 1}", status=301)
    result = await fetch(origin, "r0", tmp_path / "v.webm")
    assert not result.ok and "more than 5 redirects" in (result.reason or "")
    assert origin.hits("r6") == 0


async def test_a_declared_size_above_the_limit_is_refused_before_the_body(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("big.bin", b"z" * 200_000)
    result = await fetch(origin, "big.bin", tmp_path / "big.bin", max_size=100_000)
    assert not result.ok
    assert "declares 200000 bytes, above max_size 100000" in (result.reason or "")
    assert result.bytes_transferred == 0 and origin.hits("big.bin") == 1


async def test_an_undeclared_size_above_the_limit_is_stopped_while_streaming(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("big.bin", b"z" * 400_000, chunked=True)
    result = await fetch(
        origin, "big.bin", tmp_path / "big.bin", max_size=100_000, chunk_size=16_384
    )
    assert not result.ok
    assert "more than max_size 100000 bytes received" in (result.reason or "")
    assert result.bytes_transferred < 200_000
    assert origin.hits("big.bin") == 1


async def test_an_empty_file_fails(origin: Origin, tmp_path: Path) -> None:
    origin.add("empty.webm", b"")
    result = await fetch(origin, "empty.webm", tmp_path / "e.webm")
    assert (
        not result.ok
        and "transport" in (result.reason or "")
        and "empty file" in (result.reason or "")
    )


async def test_many_concurrent_fetches_share_one_downloader(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    data = webm_video.read_bytes()
    for i in range(12):
        origin.add(f"v{i}.webm", data, drop_after=len(data) // 2 if i % 3 == 0 else None)
    async with Downloader(fast_policy(origin, concurrency=4, per_host=2)) as downloader:
        results = await asyncio.gather(
            *(
                downloader.fetch(
                    origin.url_for(f"v{i}.webm"), tmp_path / f"v{i}.webm", kind="video"
                )
                for i in range(12)
            )
        )
    assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
    assert {r.sha256 for r in results} == {hashlib.sha256(data).hexdigest()}


async def test_a_gzip_encoded_body_is_named_as_such(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    # Asked for identity, the origin compresses anyway: the bytes are not the recording.
    import gzip

    origin.add(
        "g.webm", gzip.compress(webm_video.read_bytes()), headers={"Content-Encoding": "gzip"}
    )
    async with Downloader(fast_policy(origin)) as downloader:
        result = await downloader.fetch(origin.url_for("g.webm"), tmp_path / "g.webm")
    assert not result.ok
    assert "Content-Encoding: gzip" in (result.reason or ""), result.reason
