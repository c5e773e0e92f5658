"""Read saved webhook deliveries: JSON objects, JSON arrays, JSON Lines, directories, stdin.

Each record is yielded with where it came from (file and line) so that a bad
record can be named precisely while the good records beside it still flow.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

#: File names picked up when a directory is given as a source.
RECORD_SUFFIXES = (".json", ".jsonl", ".ndjson")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One decoded webhook body and its origin."""

    source: str
    line: int
    payload: Any


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _array_records(text: str, source: str, start: int) -> Iterator[RawRecord | InputError]:
    """Walk a JSON array element by element to keep each element's line number."""
    decoder = json.JSONDecoder()
    pos = _skip_space(text, start + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield InputError(f"not valid JSON ({exc.msg})", source=source, line=exc.lineno)
            return
        yield RawRecord(source, _line_of(text, pos), value)
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
        elif pos < len(text) and text[pos] == "]":
            return
        else:
            yield InputError(
                "not valid JSON (expected ',' or ']')", source=source, line=_line_of(text, pos)
            )
            return


def parse_text(text: str, source: str) -> Iterator[RawRecord | InputError]:
    """Decode one file's text: an object, an array, or one object per line."""
    start = _skip_space(text, 0)
    if start == len(text):
        return
    if text[start] == "[":
        yield from _array_records(text, source, start)
        return
    try:
        yield RawRecord(source, _line_of(text, start), json.loads(text))
        return
    except json.JSONDecodeError as exc:
        whole_error = exc
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip())
    try:
        json.loads(lines[first])
    except json.JSONDecodeError:
        # Not JSON Lines either: one (pretty-printed) document with a syntax error.
        yield InputError(
            f"not valid JSON ({whole_error.msg})", source=source, line=whole_error.lineno
        )
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield RawRecord(source, number, json.loads(line))
        except json.JSONDecodeError as exc:
            yield InputError(f"not valid JSON ({exc.msg})", source=source, line=number)


def _files_in(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in RECORD_SUFFIXES
    )


def read_sources(sources: Iterable[str]) -> Iterator[RawRecord | InputError]:
    """Yield every record (or the error that replaced it) from files, directories or ``-``."""
    for name in sources:
        if name == "-":
            yield from parse_text(sys.stdin.read(), "<stdin>")
            continue
        path = Path(name)
        if path.is_dir():
            files = _files_in(path)
            if not files:
                yield InputError(
                    f"no {', '.join(RECORD_SUFFIXES)} files in this directory", source=name
                )
        elif path.is_file():
            files = [path]
        else:
            yield InputError("no such file or directory", source=name)
            continue
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                yield InputError(f"cannot read ({exc})", source=str(file))
                continue
            yield from parse_text(text, str(file))
