from __future__ import annotations

import base64
import hashlib

import google_crc32c
import httpx

from pipeline.download.source_checksum import announced_checksums, compare
from storage_backends.checksums import Hasher

DATA = b"recording bytes" * 1000
MD5 = hashlib.md5(DATA).hexdigest()
CRC = base64.b64encode(google_crc32c.Checksum(DATA).digest()).decode()
SHA_B64 = base64.b64encode(hashlib.sha256(DATA).digest()).decode()


def digests_of(data: bytes, md5: bool = True) -> Hasher:
    digests = Hasher(md5=md5)
    digests.update(data)
    return digests


def test_plain_md5_etag_is_used_and_multipart_or_weak_etags_are_not() -> None:
    assert [
        c.value for c in announced_checksums(httpx.Headers({"etag": f'"{MD5}"'}), full_body=True)
    ] == [MD5]
    assert announced_checksums(httpx.Headers({"etag": f'"{MD5}-3"'}), full_body=True) == []
    assert announced_checksums(httpx.Headers({"etag": f'W/"{MD5}"'}), full_body=True) == []


def test_every_offered_checksum_is_compared() -> None:
    headers = httpx.Headers(
        [
            ("x-goog-hash", f"crc32c={CRC}"),
            ("x-goog-hash", f"md5={base64.b64encode(bytes.fromhex(MD5)).decode()}"),
            ("x-amz-checksum-sha256", SHA_B64),
            ("x-amz-checksum-crc32c", CRC),
            ("content-md5", base64.b64encode(bytes.fromhex(MD5)).decode()),
        ]
    )
    announced = announced_checksums(headers, full_body=True)
    assert {(c.algorithm, c.header) for c in announced} == {
        ("crc32c", "x-goog-hash"),
        ("md5", "x-goog-hash"),
        ("sha256", "x-amz-checksum-sha256"),
        ("crc32c", "x-amz-checksum-crc32c"),
        ("md5", "Content-MD5"),
    }
    assert all(check.ok for check in compare(announced, digests_of(DATA)))
    bad = compare(announced, digests_of(DATA + b"!"))
    assert not any(check.ok for check in bad)
    assert bad[0].expected != bad[0].found


def test_content_md5_of_a_partial_response_is_ignored() -> None:
    headers = httpx.Headers({"content-md5": base64.b64encode(bytes.fromhex(MD5)).decode()})
    assert announced_checksums(headers, full_body=False) == []


def test_composite_s3_checksums_are_not_compared() -> None:
    headers = httpx.Headers({"x-amz-checksum-crc32c": f"{CRC}-4"})
    assert announced_checksums(headers, full_body=True) == []


def test_no_checksum_offered_is_recorded_as_such() -> None:
    [check] = compare([], digests_of(DATA))
    assert check.ok and check.detail == "the source announced no checksum"


def test_one_hasher_gives_every_digest_in_one_pass_pieces_or_whole() -> None:
    whole = digests_of(DATA)
    pieces = Hasher(md5=True)
    pieces.update_all([DATA[:7], DATA[7:100], DATA[100:]])
    assert (pieces.size, pieces.sha256, pieces.crc32c, pieces.md5) == (
        len(DATA),
        hashlib.sha256(DATA).hexdigest(),
        whole.crc32c,
        hashlib.md5(DATA, usedforsecurity=False).hexdigest(),
    )
    assert digests_of(DATA, md5=False).md5 is None
