"""Read saved webhook deliveries: JSON objects, JSON arrays, JSON Lines, directories, stdin.

Each record is yielded with where it came from (file and line) so that a bad
record can be named precisely while the good records beside it still flow:
a broken line of JSON Lines, or a broken element of an array, costs only that
record, and a byte that is not UTF-8 only the record holding it. A UTF-8 byte
order mark is skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError
from .jsontext import JSONProblem, LineCounter, decode_at, loads, skip_space, text_of

#: File names picked up when a directory is given as a source.
RECORD_SUFFIXES = (".json", ".jsonl", ".ndjson")
#: Suffixes that always mean one record per line.
LINES_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One decoded webhook body and its origin."""

    source: str
    line: int
    payload: Any


def _array_records(text: str, source: str, start: int) -> Iterator[RawRecord | InputError]:
    """Walk a JSON array element by element; a broken element is reported and stepped over."""
    lines = LineCounter(text)
    pos = skip_space(text, start + 1)
    if pos < len(text) and text[pos] == "]":
        yield from _trailing(text, pos + 1, source, lines)
        return
    while True:
        if pos >= len(text):
            yield InputError(
                "not valid JSON (the array is never closed)",
                source=source,
                line=lines.line(len(text)),
            )
            return
        record_line = lines.line(pos)
        try:
            value, pos = decode_at(text, pos)
            yield RawRecord(source, record_line, value)
        except JSONProblem as problem:
            if problem.resume is None or problem.resume <= pos:
                yield _unreadable_rest(text, pos, problem, source, record_line, lines)
                return
            yield InputError(
                _with_line(problem, record_line, lines),
                source=source,
                line=record_line,
            )
            pos = problem.resume
        pos = skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = skip_space(text, pos + 1)
        elif pos < len(text) and text[pos] == "]":
            yield from _trailing(text, pos + 1, source, lines)
            return
        elif pos < len(text):
            # Read on: the next element may be whole even if a separator is missing.
            yield InputError(
                "not valid JSON (expected ',' or ']' between records)",
                source=source,
                line=lines.line(pos),
            )


def _with_line(problem: JSONProblem, record_line: int, lines: LineCounter) -> str:
    at = lines.line(problem.offset)
    return problem.message if at == record_line else f"{problem.message} at line {at}"


def _unreadable_rest(
    text: str, pos: int, problem: JSONProblem, source: str, record_line: int, lines: LineCounter
) -> InputError:
    # A bracket or string never closed: there is no telling where the next record
    # starts, so the rest is reported with a count of the records it appears to hold.
    about = text.count('"webhookType"', pos)
    last = lines.line(max(len(text.rstrip()) - 1, pos))
    what = f"about {about} record{'s' if about != 1 else ''}" if about else "the rest of the file"
    return InputError(
        f"{_with_line(problem, record_line, lines)}; lines {record_line}-{last} skipped ({what})",
        source=source,
        line=record_line,
    )


def _trailing(text: str, pos: int, source: str, lines: LineCounter) -> Iterator[InputError]:
    rest = skip_space(text, pos)
    if rest < len(text):
        yield InputError(
            "not valid JSON (text after the array's closing ']' ignored)",
            source=source,
            line=lines.line(rest),
        )


def _line_records(text: str, source: str) -> Iterator[RawRecord | InputError]:
    """One record per line; a bad line costs only itself."""
    # Split on "\n" only: JSON strings may hold U+2028 and other breaks splitlines() uses.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield RawRecord(source, number, loads(line))
        except JSONProblem as problem:
            yield InputError(problem.message, source=source, line=number)


def _looks_like_lines(text: str) -> bool:
    """Whether a text that is not one document holds one complete object per line.

    Counted only on lines that start at column 0: a pretty-printed document
    indents its inner objects, JSON Lines does not.
    """
    rows = [line for line in text.split("\n") if line.strip()]
    if len(rows) < 2:
        return False
    for line in rows:
        if line[0] != "{":
            continue
        try:
            if isinstance(loads(line), dict):
                return True
        except JSONProblem:
            continue
    return False


def parse_text(text: str, source: str, *, lines: bool = False) -> Iterator[RawRecord | InputError]:
    """Decode one file's text: an object, an array, or one object per line (``lines`` forces it)."""
    start = skip_space(text, 0)
    if start == len(text):
        return
    if lines:
        yield from _line_records(text, source)
        return
    if text[start] == "[":
        yield from _array_records(text, source, start)
        return
    try:
        yield RawRecord(source, LineCounter(text).line(start), loads(text))
        return
    except JSONProblem as problem:
        whole_error = problem
    if _looks_like_lines(text):
        yield from _line_records(text, source)
        return
    # One (pretty-printed) document that cannot be read.
    yield InputError(
        whole_error.message, source=source, line=LineCounter(text).line(whole_error.offset)
    )


def parse_bytes(
    data: bytes, source: str, *, lines: bool = False
) -> Iterator[RawRecord | InputError]:
    """:func:`parse_text` over a file's bytes (UTF-8, byte order mark allowed)."""
    yield from parse_text(text_of(data), source, lines=lines)


def _files_in(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in RECORD_SUFFIXES
    )


def _stdin_bytes() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        data: bytes = buffer.read()
        return data
    return sys.stdin.read().encode("utf-8", "surrogateescape")


def read_sources(sources: Iterable[str]) -> Iterator[RawRecord | InputError]:
    """Yield every record (or the error that replaced it) from files, directories or ``-``."""
    for name in sources:
        if name == "-":
            yield from parse_bytes(_stdin_bytes(), "<stdin>")
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
                data = file.read_bytes()
            except OSError as exc:
                yield InputError(f"cannot read ({exc.strerror})", source=str(file))
                continue
            yield from parse_bytes(data, str(file), lines=file.suffix.lower() in LINES_SUFFIXES)
