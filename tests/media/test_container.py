from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.media import ebml, sniff_bytes


def _size_field(value: int | None, width: int) -> bytes:
    payload = (1 << (7 * width)) - 1 if value is None else value
    return ((1 << (7 * width)) | payload).to_bytes(width, "big")


def _ebml_file(doctype: bytes, segment_size: int | None, width: int = 8) -> bytes:
    doctype_element = b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype
    header = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(doctype_element)]) + doctype_element
    return header + b"\x18\x53\x80\x67" + _size_field(segment_size, width)


@given(
    width=st.integers(min_value=1, max_value=8),
    value=st.integers(min_value=0, max_value=2**56),
)
def test_size_fields_of_every_width_read_back(width: int, value: int) -> None:
    value %= (1 << (7 * width)) - 1  # the all-ones value is reserved for "unknown"
    size, end = ebml.parse_size(_size_field(value, width), 0)
    assert (size, end) == (value, width)


@given(width=st.integers(min_value=1, max_value=8))
def test_the_unknown_size_marker_reads_as_none_at_every_width(width: int) -> None:
    assert ebml.parse_size(_size_field(None, width), 0) == (None, width)


@given(declared=st.integers(min_value=0, max_value=10**9), extra=st.integers(-1000, 1000))
def test_segment_end_against_file_size_decides_truncation(declared: int, extra: int) -> None:
    head = _ebml_file(b"webm", declared)
    file_size = max(len(head), len(head) + declared + extra)
    info = sniff_bytes(head, file_size)
    assert info.name == "webm"
    assert info.segment_end == len(head) + declared
    assert info.truncated == (len(head) + declared > file_size)


def test_unknown_segment_size_is_never_called_truncated() -> None:
    head = _ebml_file(b"matroska", None)
    info = sniff_bytes(head, len(head))
    assert info.name == "matroska"
    assert info.segment_size is None
    assert not info.truncated


def test_mp4_and_quicktime_brands() -> None:
    assert sniff_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(20), 1000).name == "mp4"
    assert sniff_bytes(b"\x00\x00\x00\x14ftypqt  " + bytes(8), 1000).name == "mov"
    assert sniff_bytes(b"\x00\x00\x00\x14ftypqt  " + bytes(8), 1000).brand == "qt"


def test_a_cut_ebml_header_is_unrecognised_not_an_exception() -> None:
    head = _ebml_file(b"webm", 100)[:10]
    info = sniff_bytes(head, len(head))
    assert info.name is None
    assert info.detail is not None and "EBML header" in info.detail
