"""Every disallowed URL is refused before any byte is requested from it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pipeline.download import Downloader, DownloadPolicy, UrlRefused, check_url
from pipeline.download.safety import SafetyRules
from tests.download.conftest import fast_policy
from tests.fixtures.origin import Origin

CDN = DownloadPolicy()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://cdn.videosdk.live/a.webm", "not in allowed_origins"),  # plain http
        ("https://cdn.videosdk.live:8443/a.webm", "not in allowed_origins"),
        ("https://evil.example/a.webm", "not in allowed_origins"),
        ("https://cdn.videosdk.live.evil.example/a.webm", "not in allowed_origins"),
        ("https://user:secret@cdn.videosdk.live/a.webm", "credentials"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://cdn.videosdk.live/a.webm", "scheme"),
        ("https://169.254.169.254/latest/meta-data/", "not in allowed_origins"),
        ("https://cdn.videosdk.live/a b.webm", "whitespace"),
        ("https:///a.webm", "no host"),
        ("https://cdn.videosdk.live/" + "a" * 9000, "longer than"),
    ],
)
def test_check_url_refuses_what_the_policy_does_not_allow(url: str, why: str) -> None:
    with pytest.raises(UrlRefused, match=why) as err:
        check_url(url, CDN)
    assert "secret" not in str(err.value)


def test_check_url_accepts_the_cdn_and_host_patterns() -> None:
    check_url("https://cdn.videosdk.live/individual-recordings/s/p/audio/t_1.webm", CDN)
    patterns = DownloadPolicy(allowed_origins=("*.videosdk.live",))
    check_url("https://eu.cdn.videosdk.live/x.webm", patterns)
    with pytest.raises(UrlRefused):
        check_url("https://videosdk.live/x.webm", patterns)
    with pytest.raises(UrlRefused):
        check_url("http://eu.videosdk.live/x.webm", patterns)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ],
)
async def test_a_name_resolving_to_a_non_public_address_is_refused(address: str) -> None:
    rules = SafetyRules(DownloadPolicy(allowed_origins=("*.videosdk.live",)))
    target = rules.check("https://cdn.videosdk.live/a.webm")
    with pytest.raises(UrlRefused, match="resolves to"):
        await rules.pin(target, lambda host, port: [address])


async def test_one_bad_address_among_good_ones_refuses_the_name() -> None:
    rules = SafetyRules(CDN)
    target = rules.check("https://cdn.videosdk.live/a.webm")
    with pytest.raises(UrlRefused, match=r"169\.254\.169\.254"):
        await rules.pin(target, lambda host, port: ["93.184.216.34", "169.254.169.254"])


async def test_private_origins_may_resolve_privately_but_never_to_metadata() -> None:
    policy = DownloadPolicy(
        allowed_origins=("http://minio.internal:9000",),
        private_origins=("http://minio.internal:9000",),
    )
    rules = SafetyRules(policy)
    target = rules.check("http://minio.internal:9000/a.webm")
    assert await rules.pin(target, lambda host, port: ["10.0.0.5"]) == "10.0.0.5"
    with pytest.raises(UrlRefused, match="metadata"):
        await rules.pin(target, lambda host, port: ["169.254.169.254"])


async def test_requests_go_to_the_checked_address_with_host_and_sni_kept(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=httpx.ByteStream(b"not media"))

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    async with Downloader(
        DownloadPolicy(), transport=httpx.MockTransport(handler), resolver=resolver
    ) as downloader:
        await downloader.fetch("https://cdn.videosdk.live/a.webm", tmp_path / "a.webm")
    [request] = seen
    assert request.url.host == "93.184.216.34"
    assert request.headers["host"] == "cdn.videosdk.live"
    assert request.extensions["sni_hostname"] == "cdn.videosdk.live"
    assert request.headers["accept-encoding"] == "identity"
    assert "authorization" not in request.headers and "cookie" not in request.headers


async def test_refused_urls_never_reach_the_origin(origin: Origin, tmp_path: Path) -> None:
    origin.add("a.webm", b"x" * 100)
    other_port = f"http://127.0.0.1:{origin.port + 1}/a.webm"
    policy = fast_policy(allowed_origins=(f"http://localhost:{origin.port}",))
    async with Downloader(policy) as downloader:
        for url in (origin.url_for("a.webm"), other_port, "https://cdn.videosdk.live/a.webm"):
            result = await downloader.fetch(url, tmp_path / "a.webm")
            assert not result.ok and result.reason and "refused" in result.reason
            assert not (tmp_path / "a.webm").exists()
    assert origin.requests == []


async def test_a_hostname_resolving_to_loopback_is_refused_without_a_request(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("a.webm", b"x" * 100)
    policy = fast_policy(allowed_origins=(f"http://media.test:{origin.port}",))
    async with Downloader(policy, resolver=lambda host, port: ["127.0.0.1"]) as downloader:
        result = await downloader.fetch(f"http://media.test:{origin.port}/a.webm", tmp_path / "a")
    assert not result.ok
    assert "loopback" in (result.reason or "")
    assert origin.requests == []


async def test_a_pinned_hostname_reaches_the_real_origin_with_its_host_header(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("a.bin", b"y" * 1000)
    trusted = f"http://media.test:{origin.port}"
    policy = fast_policy(allowed_origins=(trusted,), private_origins=(trusted,))
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    async with Downloader(policy, resolver=resolver) as downloader:
        result = await downloader.fetch(f"{trusted}/a.bin", tmp_path / "a.bin")
    assert result.size == 1000 and result.checks[0].ok
    assert lookups == ["media.test"]
    assert origin.requests[0].headers["host"] == f"media.test:{origin.port}"


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example/a.webm",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://media.test:{port}/a.webm",  # allowed name, but resolves to a private address
        "file:///etc/passwd",
    ],
)
async def test_redirects_to_disallowed_or_private_targets_are_refused(
    origin: Origin, tmp_path: Path, location: str
) -> None:
    origin.add("a.webm", b"x" * 100)
    origin.redirect("start", location.format(port=origin.port))
    policy = fast_policy(
        origin, allowed_origins=(origin.base_url, f"http://media.test:{origin.port}")
    )
    async with Downloader(policy, resolver=lambda host, port: ["10.0.0.7"]) as downloader:
        result = await downloader.fetch(origin.url_for("start"), tmp_path / "a.webm")
    assert not result.ok
    assert "refused" in (result.reason or "")
    assert [seen.path for seen in origin.requests] == ["/start"]  # the hop was never requested
    assert result.attempts == 1  # a refusal is final, not retried


METADATA_SPELLINGS = (
    "169.254.169.254",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64: a gateway turns it into 169.254.169.254
    "::169.254.169.254",  # IPv4-compatible
    "2002:a9fe:a9fe::1",  # 6to4
)


def _origin_of(address: str) -> str:
    return f"http://[{address}]" if ":" in address else f"http://{address}"


@pytest.mark.parametrize("address", METADATA_SPELLINGS)
def test_metadata_addresses_are_refused_even_when_listed_as_origins(address: str) -> None:
    listed = _origin_of(address)
    policy = DownloadPolicy(allowed_origins=(listed,), private_origins=(listed,))
    with pytest.raises(UrlRefused, match="metadata"):
        check_url(f"{listed}/latest/meta-data/iam/", policy)


@pytest.mark.parametrize("address", METADATA_SPELLINGS)
async def test_a_private_origin_resolving_to_any_spelling_of_metadata_is_refused(
    origin: Origin, tmp_path: Path, address: str
) -> None:
    origin.add("a.webm", b"x" * 100)
    trusted = f"http://media.test:{origin.port}"
    policy = fast_policy(allowed_origins=(trusted,), private_origins=(trusted,))
    async with Downloader(policy, resolver=lambda host, port: [address]) as downloader:
        result = await downloader.fetch(f"{trusted}/a.webm", tmp_path / "a.webm")
    assert not result.ok and "metadata" in (result.reason or "")
    assert result.attempts <= 1 and origin.requests == []


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::7f00:1", "64:ff9b::a00:5", "::127.0.0.1", "::10.0.0.5", "64:ff9b:1::c0a8:101"],
)
async def test_nat64_and_ipv4_compatible_spellings_of_private_addresses_are_refused(
    address: str,
) -> None:
    rules = SafetyRules(DownloadPolicy())
    target = rules.check("https://cdn.videosdk.live/a.webm")
    with pytest.raises(UrlRefused, match=r"resolves to .* address"):
        await rules.pin(target, lambda host, port: [address])
    # NAT64 of a public address stays usable.
    assert await rules.pin(target, lambda host, port: ["64:ff9b::808:808"]) == "64:ff9b::808:808"


async def test_a_redirect_to_a_listed_metadata_origin_is_never_followed(
    origin: Origin, tmp_path: Path
) -> None:
    origin.add("a.webm", b"x" * 100)
    origin.redirect("start", "http://169.254.169.254/latest/meta-data/iam/")
    listed = ("http://169.254.169.254", "http://[::ffff:169.254.169.254]")
    policy = fast_policy(allowed_origins=(origin.base_url, *listed), private_origins=listed)
    async with Downloader(policy) as downloader:
        result = await downloader.fetch(origin.url_for("start"), tmp_path / "a.webm")
    assert not result.ok and "metadata" in (result.reason or "")
    assert result.attempts == 1 and [seen.path for seen in origin.requests] == ["/start"]
