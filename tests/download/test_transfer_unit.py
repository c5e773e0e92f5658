"""Protocol corners injected with ``httpx.MockTransport``: a 416 after the last byte, a
``Content-Range`` at the wrong offset, cookies, and the concurrency limits. A real origin
cannot easily misbehave in exactly these ways on demand."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx

from pipeline.download import Downloader
from tests.download.conftest import fast_policy

DATA = bytes(range(256)) * 64
URL = "https://cdn.videosdk.live/s/p/audio/track.webm"
ETAG = f'"{hashlib.md5(DATA).hexdigest()}"'


class CutStream(httpx.AsyncByteStream):
    """A body that sends ``data`` and then fails like a reset connection."""

    def __init__(self, data: bytes):
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data
        raise httpx.ReadError("connection reset by peer")


def downloader(handler: Callable[[httpx.Request], object], **policy: object) -> Downloader:
    return Downloader(
        fast_policy(**policy),
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        resolver=lambda host, port: ["93.184.216.34"],
    )


def body(status: int, data: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(data))


async def test_416_after_every_byte_arrived_means_the_staged_file_is_complete(
    tmp_path: Path,
) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:
            headers = {"content-length": str(len(DATA)), "etag": ETAG}
            return httpx.Response(200, headers=headers, stream=CutStream(DATA))
        return body(416, b"", {"content-range": f"bytes */{len(DATA)}"})

    async with downloader(handler) as d:
        result = await d.fetch(URL, tmp_path / "a.webm")
    assert result.checks[0].ok and result.checks[1].ok  # transport and ETag MD5
    assert requests[1].headers["range"] == f"bytes={len(DATA)}-"
    assert (tmp_path / "a.webm").read_bytes() == DATA


async def test_a_content_range_at_the_wrong_offset_restarts(tmp_path: Path) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            headers = {"content-length": str(len(DATA)), "etag": ETAG}
            return httpx.Response(200, headers=headers, stream=CutStream(DATA[:1000]))
        if calls == 2:
            headers = {"content-range": f"bytes 0-{len(DATA) - 1}/{len(DATA)}", "etag": ETAG}
            return body(206, DATA, headers)
        assert "range" not in request.headers
        return body(200, DATA, {"content-length": str(len(DATA)), "etag": ETAG})

    async with downloader(handler) as d:
        result = await d.fetch(URL, tmp_path / "a.webm")
    assert calls == 3
    assert (tmp_path / "a.webm").read_bytes() == DATA
    assert result.checks[0].ok and result.size == len(DATA)


async def test_cookies_set_by_a_source_are_never_sent_back(tmp_path: Path) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        headers = {"content-length": str(len(DATA)), "etag": ETAG, "set-cookie": "s=1; Path=/"}
        if len(sent) == 1:
            return httpx.Response(200, headers=headers, stream=CutStream(DATA[:10]))
        return body(200, DATA, headers)

    async with downloader(handler) as d:
        await d.fetch(URL, tmp_path / "a.webm")
        await d.fetch(URL, tmp_path / "b.webm")
    assert len(sent) >= 3
    assert all("cookie" not in r.headers and "authorization" not in r.headers for r in sent)


async def test_global_and_per_host_limits_hold_under_many_tasks(tmp_path: Path) -> None:
    in_flight: dict[str, int] = {}
    peak: dict[str, int] = {}
    total_peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal total_peak
        host = request.headers["host"]
        in_flight[host] = in_flight.get(host, 0) + 1
        peak[host] = max(peak.get(host, 0), in_flight[host])
        total_peak = max(total_peak, sum(in_flight.values()))
        await asyncio.sleep(0.02)
        in_flight[host] -= 1
        return body(200, DATA, {"content-length": str(len(DATA))})

    hosts = ["a.videosdk.live", "b.videosdk.live", "c.videosdk.live"]
    async with downloader(
        handler, allowed_origins=("*.videosdk.live",), concurrency=5, per_host=2
    ) as d:
        results = await asyncio.gather(
            *(
                d.fetch(f"https://{hosts[i % 3]}/{i}.webm", tmp_path / f"{i}.webm")
                for i in range(30)
            )
        )
    assert all(r.checks[0].ok for r in results)
    assert max(peak.values()) == 2
    assert total_peak <= 5
