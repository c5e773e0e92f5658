"""Just enough EBML (the Matroska/WebM byte format) to read headers and walk element sizes.

FFmpeg's demuxer hides how much of a Matroska file was declared versus present, so the
truncation checks read the element sizes themselves: a Segment or Cluster that declares
more bytes than the file holds was cut short.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

EBML_HEADER = 0x1A45DFA3
DOCTYPE = 0x4282
SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
INFO = 0x1549A966
TRACKS = 0x1654AE6B
CUES = 0x1C53BB6B
CLUSTER = 0x1F43B675
TAGS = 0x1254C367
CHAPTERS = 0x1043A770
ATTACHMENTS = 0x1941A469
VOID = 0xEC
CRC32 = 0xBF
TIMESTAMP_SCALE = 0x2AD7B1
DURATION = 0x4489
DATE_UTC = 0x4461

# Children of a Segment; meeting one of these ends an unknown-size element (Matroska rule).
LEVEL1_IDS = frozenset(
    {SEEK_HEAD, INFO, TRACKS, CUES, CLUSTER, TAGS, CHAPTERS, ATTACHMENTS, SEGMENT, EBML_HEADER}
)
# Elements that may appear anywhere and say nothing about the nesting level.
GLOBAL_IDS = frozenset({VOID, CRC32})
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
# Children of a Cluster: Timestamp, Position, PrevSize, SimpleBlock, BlockGroup,
# EncryptedBlock, SilentTracks.
CLUSTER_CHILD_IDS = frozenset({0xE7, 0xA7, 0xAB, SIMPLE_BLOCK, BLOCK_GROUP, 0xAF, 0x5854})

_MATROSKA_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)


class EBMLError(ValueError):
    """The bytes are not well-formed EBML at the place they were read."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Element:
    """One element header: where it starts, where its data starts, and its declared size."""

    id: int
    offset: int
    data_offset: int
    size: int | None  # None is the "unknown size" marker used by live writers

    @property
    def end(self) -> int | None:
        """Offset just past the element's data, when its size is known."""
        return None if self.size is None else self.data_offset + self.size


def _vint_length(first: int, max_length: int) -> int:
    for length in range(1, max_length + 1):
        if first & (0x80 >> (length - 1)):
            return length
    raise EBMLError(f"invalid variable-length integer lead byte 0x{first:02x}")


def parse_id(data: bytes, pos: int) -> tuple[int, int]:
    """An element ID at ``pos`` (marker bits kept, as IDs are written) and the next position."""
    if pos >= len(data):
        raise EBMLError("element ID runs past the available bytes")
    length = _vint_length(data[pos], 4)
    if pos + length > len(data):
        raise EBMLError("element ID runs past the available bytes")
    return int.from_bytes(data[pos : pos + length], "big"), pos + length


def parse_size(data: bytes, pos: int) -> tuple[int | None, int]:
    """An element data size at ``pos`` (None when it is the unknown-size marker)."""
    if pos >= len(data):
        raise EBMLError("element size runs past the available bytes")
    length = _vint_length(data[pos], 8)
    if pos + length > len(data):
        raise EBMLError("element size runs past the available bytes")
    value = int.from_bytes(data[pos : pos + length], "big") & ((1 << (7 * length)) - 1)
    unknown = value == (1 << (7 * length)) - 1
    return (None if unknown else value), pos + length


def parse_element(data: bytes, pos: int, base: int = 0) -> Element:
    """The element header at ``pos`` of ``data``; ``base`` is ``data``'s offset in the file."""
    element_id, pos_after_id = parse_id(data, pos)
    size, data_pos = parse_size(data, pos_after_id)
    return Element(element_id, base + pos, base + data_pos, size)


def read_element(stream: BinaryIO, offset: int) -> Element | None:
    """The element header at ``offset`` of a file, or None at end of file or a cut header."""
    stream.seek(offset)
    head = stream.read(12)  # 4-byte ID plus 8-byte size is the longest header
    if not head:
        return None
    try:
        return parse_element(head, 0, offset)
    except EBMLError:
        return None


def children(data: bytes, start: int, end: int, base: int = 0) -> Iterator[Element]:
    """The elements laid end to end in ``data[start:end]`` (stops at the first cut header)."""
    pos = start
    while pos < end:
        try:
            element = parse_element(data, pos, base)
        except EBMLError:
            return
        yield element
        if element.size is None:
            return
        pos = element.data_offset - base + element.size


def read_uint(payload: bytes) -> int:
    """An EBML unsigned integer payload."""
    return int.from_bytes(payload, "big") if payload else 0


def read_float(payload: bytes) -> float | None:
    """An EBML float payload (4 or 8 bytes; empty means 0)."""
    if len(payload) == 4:
        return float(struct.unpack(">f", payload)[0])
    if len(payload) == 8:
        return float(struct.unpack(">d", payload)[0])
    return 0.0 if not payload else None


def read_date(payload: bytes) -> datetime | None:
    """An EBML date payload: signed nanoseconds since 2001-01-01T00:00:00 UTC."""
    if len(payload) != 8:
        return None
    nanoseconds = int.from_bytes(payload, "big", signed=True)
    try:
        return _MATROSKA_EPOCH + timedelta(microseconds=nanoseconds // 1000)
    except OverflowError:
        return None


def walk_segment(stream: BinaryIO, segment: Element, file_size: int) -> Iterator[Element]:
    """Every child of a Segment, and the children of unknown-size Clusters, as declared.

    An element whose declared end lies past ``file_size`` is yielded and ends the walk,
    so the caller sees where the file was cut. Raises ``EBMLError`` (with the offset) when
    a header is cut or malformed, or an element turns up where it cannot be.
    """
    end = file_size if segment.end is None else min(segment.end, file_size)
    pos = segment.data_offset
    in_unknown_cluster = False
    while pos < end:
        element = read_element(stream, pos)
        if element is None:
            raise EBMLError("element header is cut or malformed", pos)
        if element.id in LEVEL1_IDS:
            in_unknown_cluster = False
        elif element.id not in GLOBAL_IDS and not (
            in_unknown_cluster and element.id in CLUSTER_CHILD_IDS
        ):
            raise EBMLError(f"unexpected element 0x{element.id:X}", pos)
        yield element
        if element.size is None:
            if element.id != CLUSTER:
                return  # only Clusters are written with an unknown size in practice
            # Descend: its blocks follow, and the next level-1 ID ends the Cluster.
            in_unknown_cluster = True
            pos = element.data_offset
            continue
        if element.data_offset + element.size > file_size:
            return
        pos = element.data_offset + element.size
