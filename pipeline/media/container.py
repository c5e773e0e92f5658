"""Recognise a media container from its first bytes and read the sizes it declares.

Pure Python over a few kilobytes of header: cheap enough to run on every staged file
before FFmpeg is asked to read it, and independent of what FFmpeg chooses to tolerate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from pipeline.media import ebml

HEAD_BYTES = 64 * 1024
_MP4_FAMILY_BRANDS = {"qt  ": "mov"}


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """What the header says: the container, and for Matroska the Segment's declared extent."""

    name: str | None  # "webm", "matroska", "mp4", "mov", or None when not recognised
    file_size: int
    doctype: str | None = None  # EBML DocType
    brand: str | None = None  # ISO-BMFF major brand
    segment_header: int | None = None  # where the Segment element starts
    segment_offset: int | None = None  # where the Segment's data starts
    segment_size: int | None = None  # declared data size; None when unknown or absent
    timestamp_scale: int | None = None  # nanoseconds per Matroska tick
    declared_duration: float | None = None  # seconds, from the Segment Info
    date_utc: datetime | None = None  # Segment Info DateUTC, the recording's start
    detail: str | None = None  # why the header was not recognised or is damaged

    @property
    def is_matroska(self) -> bool:
        """True for WebM and Matroska (EBML) files."""
        return self.doctype is not None

    @property
    def segment_end(self) -> int | None:
        """Offset just past the Segment's data, when its size is declared."""
        if self.segment_offset is None or self.segment_size is None:
            return None
        return self.segment_offset + self.segment_size

    @property
    def truncated(self) -> bool:
        """True when the Segment declares more bytes than the file holds."""
        end = self.segment_end
        return end is not None and end > self.file_size


def sniff_container(path: Path) -> ContainerInfo:
    """Read the head of ``path`` and say what container it is and what it declares."""
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
        size = stream.seek(0, 2)
    return sniff_bytes(head, size)


def sniff_bytes(head: bytes, file_size: int) -> ContainerInfo:
    """Like ``sniff_container`` for the first bytes of a file of ``file_size`` bytes."""
    if head[:4] == ebml.EBML_HEADER.to_bytes(4, "big"):
        return _sniff_ebml(head, file_size)
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1")
        name = _MP4_FAMILY_BRANDS.get(brand, "mp4")
        return ContainerInfo(name=name, file_size=file_size, brand=brand.strip())
    detail = "empty file" if file_size == 0 else f"unrecognised signature {head[:8].hex()}"
    return ContainerInfo(name=None, file_size=file_size, detail=detail)


def _sniff_ebml(head: bytes, file_size: int) -> ContainerInfo:
    try:
        header = ebml.parse_element(head, 0)
        if header.end is None or header.end > len(head):
            raise ebml.EBMLError("EBML header is cut or has no size")
        doctype = None
        for child in ebml.children(head, header.data_offset, header.end):
            if child.id == ebml.DOCTYPE and child.end is not None:
                raw = head[child.data_offset : child.end]
                doctype = raw.rstrip(b"\0").decode("ascii", "replace")
        if doctype not in ("webm", "matroska"):
            return ContainerInfo(
                name=None,
                file_size=file_size,
                doctype=doctype,
                detail=f"EBML DocType {doctype!r} is not webm or matroska",
            )
        segment = ebml.parse_element(head, header.end)
    except ebml.EBMLError as exc:
        return ContainerInfo(name=None, file_size=file_size, detail=f"EBML header: {exc}")
    if segment.id != ebml.SEGMENT:
        return ContainerInfo(
            name=None,
            file_size=file_size,
            doctype=doctype,
            detail=f"expected a Segment after the EBML header, found ID 0x{segment.id:x}",
        )
    scale, duration, date = _segment_info(head, segment)
    return ContainerInfo(
        name=doctype,
        file_size=file_size,
        doctype=doctype,
        segment_header=segment.offset,
        segment_offset=segment.data_offset,
        segment_size=segment.size,
        timestamp_scale=scale,
        declared_duration=duration,
        date_utc=date,
    )


def _segment_info(
    head: bytes, segment: ebml.Element
) -> tuple[int | None, float | None, datetime | None]:
    """TimestampScale, Duration (seconds) and DateUTC from the Info element, when in ``head``."""
    end = len(head) if segment.end is None else min(segment.end, len(head))
    for element in ebml.children(head, segment.data_offset, end):
        if element.id == ebml.CLUSTER:
            break  # Info always precedes the media data
        if element.id != ebml.INFO or element.end is None or element.end > len(head):
            continue
        scale = 1_000_000  # the Matroska default when TimestampScale is absent
        ticks: float | None = None
        date: datetime | None = None
        for field in ebml.children(head, element.data_offset, element.end):
            if field.end is None:
                continue
            payload = head[field.data_offset : field.end]
            if field.id == ebml.TIMESTAMP_SCALE:
                scale = ebml.read_uint(payload) or scale
            elif field.id == ebml.DURATION:
                ticks = ebml.read_float(payload)
            elif field.id == ebml.DATE_UTC:
                date = ebml.read_date(payload)
        duration = None if ticks is None else ticks * scale / 1e9
        return scale, duration, date
    return None, None, None


@dataclass(frozen=True, slots=True)
class StructureFault:
    """Where the file's element (Matroska) or box (MP4) structure breaks, and how."""

    what: str
    offset: int
    declared_end: int | None  # where the element says it ends, when it says so
    cut: bool  # True: the file ends inside it; False: the bytes there are damaged

    def describe(self, file_size: int) -> str:
        """One line for the check report."""
        if self.declared_end is not None:
            return (
                f"{self.what} at byte {self.offset} ends at byte {self.declared_end},"
                f" past the {file_size}-byte file"
            )
        return f"{self.what} at byte {self.offset}"


def find_structure_fault(path: Path, info: ContainerInfo) -> StructureFault | None:
    """The first element (Matroska) or top-level box (MP4) that is cut short or damaged.

    Reads element headers only, seeking over their data, so a long recording costs one
    small read per Cluster (or per block inside an unknown-size Cluster).
    """
    with path.open("rb") as stream:
        if info.is_matroska and info.segment_header is not None:
            return _ebml_fault(stream, info)
        if info.name in ("mp4", "mov"):
            return _box_fault(stream, info.file_size)
    return None


def _ebml_fault(stream: BinaryIO, info: ContainerInfo) -> StructureFault | None:
    assert info.segment_header is not None
    segment = ebml.read_element(stream, info.segment_header)
    if segment is None:
        return StructureFault("Segment header", info.segment_header, None, cut=True)
    try:
        for element in ebml.walk_segment(stream, segment, info.file_size):
            if element.end is not None and element.end > info.file_size:
                name = _element_name(element.id)
                return StructureFault(name, element.offset, element.end, cut=True)
    except ebml.EBMLError as exc:
        offset = exc.offset if exc.offset is not None else info.file_size
        # A header that starts within its maximum length of the end was cut, not damaged.
        cut = offset + 12 > info.file_size and "unexpected" not in str(exc)
        return StructureFault(str(exc), offset, None, cut=cut)
    return None


_NAMES = {
    ebml.CLUSTER: "Cluster",
    ebml.CUES: "Cues",
    ebml.INFO: "Info",
    ebml.TRACKS: "Tracks",
    ebml.SEEK_HEAD: "SeekHead",
    ebml.TAGS: "Tags",
    ebml.VOID: "Void",
    0xA3: "SimpleBlock",
    0xA0: "BlockGroup",
}


def _element_name(element_id: int) -> str:
    return _NAMES.get(element_id, f"element 0x{element_id:X}")


def _box_fault(stream: BinaryIO, file_size: int) -> StructureFault | None:
    """Walk ISO-BMFF top-level boxes; the last one must end exactly at the end of the file."""
    pos = 0
    while pos < file_size:
        stream.seek(pos)
        header = stream.read(16)
        if len(header) < 8:
            return StructureFault("box header", pos, pos + 8, cut=True)
        size = int.from_bytes(header[:4], "big")
        kind = header[4:8].decode("latin-1")
        if size == 1:  # 64-bit "largesize" follows the type
            if len(header) < 16:
                return StructureFault(f"{kind!r} box header", pos, pos + 16, cut=True)
            size = int.from_bytes(header[8:16], "big")
        elif size == 0:  # the box runs to the end of the file by definition
            return None
        if size < 8:
            return StructureFault(f"malformed {kind!r} box", pos, None, cut=False)
        if pos + size > file_size:
            return StructureFault(f"{kind!r} box", pos, pos + size, cut=True)
        pos += size
    return None
