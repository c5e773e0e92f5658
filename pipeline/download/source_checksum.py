"""Checksums a source announces in its headers, and comparing them with what was received.

Recognised, whichever the source offers: a plain-MD5 ``ETag`` (32 hex digits,
strong; multipart S3 ETags ``<hex>-<n>`` are not an MD5 of the file),
``x-goog-hash`` (``crc32c=``, ``md5=``), ``x-amz-checksum-crc32c`` and
``x-amz-checksum-sha256`` (full-object only: composite values ``...-<n>`` are
skipped) and ``Content-MD5`` on a full (200) response.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import httpx

from pipeline.checks import Check
from storage_backends.checksums import Hasher

_HEX_MD5 = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True, slots=True)
class SourceChecksum:
    """One checksum announced by the source: algorithm, value in our form, and header."""

    algorithm: str  # "md5" (hex), "crc32c" (base64), "sha256" (hex)
    value: str
    header: str


def _b64_to_hex(value: str, length: int) -> str | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == length else None


def _b64_normalised(value: str, length: int) -> str | None:
    hexed = _b64_to_hex(value, length)
    return base64.b64encode(bytes.fromhex(hexed)).decode("ascii") if hexed else None


def announced_checksums(headers: httpx.Headers, *, full_body: bool) -> list[SourceChecksum]:
    """The checksums ``headers`` announce for the whole file; unreadable values are skipped."""
    found: list[SourceChecksum] = []
    etag = headers.get("etag")
    if etag and not etag.startswith("W/"):
        bare = etag.strip().strip('"')
        if _HEX_MD5.fullmatch(bare):
            found.append(SourceChecksum("md5", bare.lower(), "ETag"))
    for header in headers.get_list("x-goog-hash", split_commas=True):
        name, _, value = header.strip().partition("=")
        name = name.strip().lower()
        if name == "md5" and (hexed := _b64_to_hex(value, 16)):
            found.append(SourceChecksum("md5", hexed, "x-goog-hash"))
        elif name == "crc32c" and (b64 := _b64_normalised(value, 4)):
            found.append(SourceChecksum("crc32c", b64, "x-goog-hash"))
    crc = headers.get("x-amz-checksum-crc32c")
    if crc and "-" not in crc and (b64 := _b64_normalised(crc, 4)):
        found.append(SourceChecksum("crc32c", b64, "x-amz-checksum-crc32c"))
    sha = headers.get("x-amz-checksum-sha256")
    if sha and "-" not in sha and (hexed := _b64_to_hex(sha, 32)):
        found.append(SourceChecksum("sha256", hexed, "x-amz-checksum-sha256"))
    content_md5 = headers.get("content-md5")
    if full_body and content_md5 and (hexed := _b64_to_hex(content_md5, 16)):
        found.append(SourceChecksum("md5", hexed, "Content-MD5"))
    return found


def wants_md5(checksums: list[SourceChecksum]) -> bool:
    """Whether MD5 must be computed to check what the source announced."""
    return any(c.algorithm == "md5" for c in checksums)


def compare(checksums: list[SourceChecksum], digests: Hasher) -> list[Check]:
    """One check per announced checksum; a single passing note when none was announced."""
    if not checksums:
        return [Check("source_checksum", ok=True, detail="the source announced no checksum")]
    computed = {
        "md5": digests.md5,
        "crc32c": digests.crc32c,
        "sha256": digests.sha256,
    }
    checks = []
    for announced in checksums:
        found = computed[announced.algorithm]
        checks.append(
            Check(
                f"source_checksum:{announced.header}",
                ok=found == announced.value,
                expected=f"{announced.algorithm}={announced.value}",
                found=f"{announced.algorithm}={found}",
            )
        )
    return checks
