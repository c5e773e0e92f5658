"""Rendering query rows as a table (rich), JSON or CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from typing import Any, Literal, TextIO

from .rows import ExportRow, SegmentRow, SessionRow

Format = Literal["table", "json", "csv"]
FORMATS: tuple[Format, ...] = ("table", "json", "csv")


def human_bytes(size: int) -> str:
    """1536 -> ``1.5 KiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    """3725.2 -> ``1:02:05``; unknown -> empty."""
    if seconds is None:
        return ""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _session_cells(row: SessionRow) -> list[str]:
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(row.segments_by_kind.items()))
    when = row.started_at or row.updated_at
    return [
        row.session_id,
        row.meeting_id or "",
        when.strftime("%Y-%m-%d %H:%M"),
        str(len(row.participants)),
        f"{row.segment_count} ({kinds})" if kinds else "0",
        human_bytes(row.bytes),
        human_duration(row.duration_seconds),
        str(row.failures),
    ]


def _segment_cells(row: SegmentRow) -> list[str]:
    return [
        row.session_id,
        row.participant_id,
        row.kind,
        row.started_at.strftime("%Y-%m-%d %H:%M:%S") if row.started_at else "",
        human_duration(row.duration_seconds),
        human_bytes(row.size),
        row.key,
    ]


_SESSION_HEADERS = [
    "session",
    "meeting",
    "started",
    "participants",
    "segments",
    "bytes",
    "duration",
    "failures",
]
#: CSV columns (the records' keys), for the header of an empty result.
_EMPTY_COLUMNS = {
    "sessions": ("sessionId", "meetingId", "updatedAt", "startedAt", "participants", "segmentCount",
                 "segmentsByKind", "bytes", "durationSeconds", "failures"),
    "segments": ("sessionId", "participantId", "kind", "key", "filename", "size", "sha256", "crc32c",
                 "durationSeconds", "startedAt", "archivedAt", "container"),
    "exports": ("sessionId", "participantId", "pair", "mode", "format", "key", "size", "sha256",
                "startSeconds", "durationSeconds", "createdAt", "sources"),
}  # fmt: skip
_SEGMENT_HEADERS = ["session", "participant", "kind", "started", "duration", "bytes", "key"]
_EXPORT_HEADERS = ["session", "participant", "pair", "mode", "from", "duration", "bytes", "key"]


def _export_cells(row: ExportRow) -> list[str]:
    return [
        row.session_id,
        row.participant_id or "(mix)",
        row.pair,
        row.mode,
        f"{row.start_seconds:.1f} s" if row.start_seconds is not None else "",
        human_duration(row.duration_seconds),
        human_bytes(row.size),
        row.key,
    ]


def _flat(value: Any) -> Any:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in sorted(value.items()))
    return "" if value is None else value


def render(
    rows: Sequence[SessionRow] | Sequence[SegmentRow] | Sequence[ExportRow],
    fmt: Format,
    out: TextIO,
    *,
    kind: Literal["sessions", "segments", "exports"],
) -> None:
    """Write ``rows`` to ``out``: a table for people, JSON or CSV for programs."""
    records = [row.to_record() for row in rows]
    if fmt == "json":
        json.dump(records, out, indent=2)
        out.write("\n")
        return
    if fmt == "csv":
        columns = list(records[0]) if records else list(_EMPTY_COLUMNS[kind])
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            writer.writerow([_flat(record[name]) for name in columns])
        return
    # rich only for the table: json and csv answers start without it.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False, header_style="bold")
    headers = {"sessions": _SESSION_HEADERS, "segments": _SEGMENT_HEADERS}.get(kind, _EXPORT_HEADERS)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        if isinstance(row, SessionRow):
            cells = _session_cells(row)
        elif isinstance(row, SegmentRow):
            cells = _segment_cells(row)
        else:
            cells = _export_cells(row)
        # Text, not str: an ID is shown as it is, never read as rich markup ("[b]") or an
        # emoji code (":ok:"); nor is rich's emoji table loaded to look for them.
        table.add_row(*(Text(cell) for cell in cells))
    console = Console(file=out, width=200 if not out.isatty() else None)
    console.print(table)
    console.print(f"{len(rows)} {kind}")
