"""A resumed download never splices two versions of a file, and short ranges still end whole."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import pytest

from pipeline.download import Downloader, DownloadResult
from tests.download.conftest import fast_policy, sha256_of
from tests.fixtures.origin import Origin


async def _fetch(origin: Origin, path: str, dest: Path) -> DownloadResult:
    async with Downloader(fast_policy(origin)) as downloader:
        return await downloader.fetch(origin.url_for(path), dest, kind="video")


def _other_version(path: Path, after: int) -> bytes:
    """The same file with frame payload bytes changed past ``after``: as long, still valid media.

    Only bytes inside coded frames change, so the container (and any splice of
    the two versions) still demuxes: nothing but the resume logic can tell them apart.
    """
    data = bytearray(path.read_bytes())
    changed = 0
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            if packet.pos is not None and packet.pos > after and packet.size > 16:
                middle = packet.pos + packet.size // 2
                data[middle] ^= 0xFF
                changed += 1
    assert changed, "no frame past the resume point"
    return bytes(data)


@pytest.mark.parametrize(
    "etags",
    [(None, None), ('"v1"', '"v2"')],
    ids=["md5-etag", "opaque-etag"],
)
async def test_origin_ignoring_if_range_with_a_new_etag_restarts_from_zero(
    etags: tuple[str | None, str | None], origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    old = webm_video.read_bytes()
    half = len(old) // 2
    new = _other_version(webm_video, half)
    assert len(new) == len(old) and new != old
    # The first answer drops half-way; the file is then replaced, and the origin
    # answers the resumed request with 206 from the asked offset of the new
    # version, its new ETag beside it, ignoring the If-Range that named the old one.
    # An ETag that is the file's MD5 would also expose a splice through the MD5
    # check; an opaque one leaves only the ETag comparison to notice.
    first_etag, next_etag = etags
    origin.add(
        "v.webm",
        old,
        drop_after=half,
        ignore_if_range=True,
        changes_to=new,
        etag=first_etag,
        next_etag=next_etag,
    )

    result = await _fetch(origin, "v.webm", tmp_path / "v.webm")
    assert result.ok, result.reason
    assert sha256_of(tmp_path / "v.webm") == hashlib.sha256(new).hexdigest() == result.sha256
    _first, resumed, *rest = origin.requests
    assert resumed.headers["range"] == f"bytes={half}-"
    assert resumed.headers["if-range"] == (first_etag or f'"{hashlib.md5(old).hexdigest()}"')
    assert rest and "range" not in rest[0].headers  # started over from byte 0


async def test_ranges_shorter_than_asked_end_whole_and_identical(
    origin: Origin, webm_video: Path, tmp_path: Path
) -> None:
    data = webm_video.read_bytes()
    quarter = len(data) // 4 + 1
    origin.add("v.webm", data, drop_after=quarter, max_range=quarter)

    result = await _fetch(origin, "v.webm", tmp_path / "v.webm")
    assert result.ok, result.reason
    assert sha256_of(tmp_path / "v.webm") == hashlib.sha256(data).hexdigest()
    ranges = [seen.headers.get("range") for seen in origin.requests]
    assert ranges == [None, f"bytes={quarter}-", f"bytes={2 * quarter}-", f"bytes={3 * quarter}-"]
    assert result.bytes_transferred == len(data)  # nothing fetched twice


async def test_a_resumed_range_of_a_resized_file_restarts_from_zero(
    origin: Origin, webm_video: Path, live_webm_video: Path, tmp_path: Path
) -> None:
    old, new = webm_video.read_bytes(), live_webm_video.read_bytes()
    assert len(new) != len(old)
    half = len(old) // 2
    # A careless origin: the same ETag for both versions, If-Range ignored. Only the
    # total in the resumed answer's Content-Range shows that the file changed.
    origin.add("v.webm", old, drop_after=half, ignore_if_range=True, changes_to=new, etag='"same"')

    result = await _fetch(origin, "v.webm", tmp_path / "v.webm")
    assert result.ok, result.reason
    assert sha256_of(tmp_path / "v.webm") == hashlib.sha256(new).hexdigest()
    assert origin.requests[1].headers["range"] == f"bytes={half}-"
    assert "range" not in origin.requests[2].headers
