"""Damaged bytes that one checksum cannot see: for proving both checksums are checked."""

from __future__ import annotations

import google_crc32c


def _crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


def same_crc32c(data: bytes, *, at: int = 0) -> bytes:
    """Different bytes of the same length and the same CRC32C as ``data``.

    CRC32C is affine over GF(2): flipping a set of bits changes it by the XOR of
    each flip's own change. Any 33 single-bit flips have a dependent subset,
    found by Gaussian elimination; flipping that subset keeps the CRC32C while
    the SHA-256 changes. The flips fall in the 5 bytes starting at ``at``.
    """
    if len(data) < at + 5:
        raise ValueError("need at least 5 bytes from the offset on")
    base = _crc(data)
    rows: list[tuple[int, int]] = []  # (CRC change, bitmask of the flips combined)
    for bit in range(33):
        flipped = bytearray(data)
        flipped[at + bit // 8] ^= 1 << (bit % 8)
        rows.append((_crc(bytes(flipped)) ^ base, 1 << bit))
    basis: dict[int, tuple[int, int]] = {}  # leading bit -> row
    for change, flips in rows:
        while change:
            lead = change.bit_length() - 1
            if lead not in basis:
                basis[lead] = (change, flips)
                break
            other_change, other_flips = basis[lead]
            change, flips = change ^ other_change, flips ^ other_flips
        if change == 0:
            forged = bytearray(data)
            for bit in range(33):
                if flips >> bit & 1:
                    forged[at + bit // 8] ^= 1 << (bit % 8)
            result = bytes(forged)
            assert result != data and _crc(result) == base
            return result
    raise AssertionError("33 vectors in a 32-dimensional space are always dependent")
