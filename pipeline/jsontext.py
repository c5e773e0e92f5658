"""Decoding JSON that strangers wrote, without the parser's own limits turning into tracebacks.

Python's parser refuses some valid JSON with errors that are not syntax errors:
an integer of more than 4300 digits (``ValueError``) and nesting deep enough to
exhaust the stack (``RecursionError``). It also accepts escapes that are not
Unicode (a lone surrogate such as ``"\\ud800"``), which then fail when the value
is encoded again (for the delivery id, the journal, the signature check). Every
reader of outside JSON (saved webhooks, the receiver's bodies) goes through
here, so each such input becomes one :class:`JSONProblem` that says what is
wrong and where, found before the standard parser could fail on it.

Bytes are decoded as UTF-8 with ``surrogateescape``: a byte that is not UTF-8
spoils only the value that holds it, and is reported as that byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

#: Deeper than any webhook (they nest four levels); far below the interpreter's stack.
MAX_DEPTH = 64
#: Python's own default limit, fixed here so the environment cannot change what is read.
MAX_INT_DIGITS = 4300

_BOM = "\ufeff"
#: A string (possibly unterminated) or one bracket; possessive so no input backtracks.
_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+(?P<close>")?|[\[\]{}]', re.S)
_SCALAR = re.compile(r'[^,\[\]{}\s"]+')
_UNDECODED = re.compile("[\udc80-\udcff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONG_INT = re.compile(rf"-?\d{{{MAX_INT_DIGITS + 1},}}")


class JSONProblem(ValueError):
    """Why a JSON value cannot be used; ``offset`` is where, ``resume`` where the value ends."""

    def __init__(self, message: str, offset: int, resume: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.resume = resume


class _LongInteger(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _LongInteger(len(text.lstrip("-")))
    return int(text)


_DECODER = json.JSONDecoder(parse_int=_parse_int)


def text_of(data: bytes) -> str:
    """Bytes as text: UTF-8, a leading byte order mark dropped, bad bytes kept as escapes."""
    text = data.decode("utf-8", "surrogateescape")
    return text[1:] if text.startswith(_BOM) else text


def skip_space(text: str, pos: int) -> int:
    """The first offset at or after ``pos`` that is not JSON white space."""
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def dotted_path(location: Sequence[str | int]) -> str:
    """A field's location as written in messages: ``data.fileDetails[2].fileUrl``."""
    out = ""
    for part in location:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # A key may itself hold a lone surrogate: show it escaped, so it can be printed.
            name = str(part).encode("utf-8", "backslashreplace").decode("utf-8")
            out += f".{name}" if out else name
    return out or "(record)"


def value_end(text: str, pos: int) -> tuple[int | None, int | None]:
    """Where the value starting at ``pos`` ends, judged by its brackets and strings only.

    Returns the end offset (``None`` when a bracket or string is never closed)
    and the offset where nesting first passed :data:`MAX_DEPTH` (else ``None``).
    This never recurses, so it also finds the end of a value too deep to parse.
    """
    if pos >= len(text):
        return None, None
    first = text[pos]
    if first not in '[{"':
        match = _SCALAR.match(text, pos)
        return (match.end() if match else pos + 1), None
    depth = 0
    too_deep: int | None = None
    for token in _TOKEN.finditer(text, pos):
        kind = token.group()
        if kind[0] == '"':
            if token.group("close") is None:
                return None, too_deep
            if depth == 0:
                return token.end(), too_deep
        elif kind in "[{":
            depth += 1
            if depth > MAX_DEPTH and too_deep is None:
                too_deep = token.start()
        else:
            depth -= 1
            if depth <= 0:
                return token.end(), too_deep
    return None, too_deep


def decode_at(text: str, pos: int, *, shallow: bool = False) -> tuple[Any, int]:
    """Decode the JSON value at ``pos``; return it and where it ends, or raise ``JSONProblem``.

    ``shallow`` tells that the text holds too few brackets to nest past
    :data:`MAX_DEPTH`, so the scan for depth is skipped (it is only needed
    then to say where a broken value ends).
    """
    end: int | None = None
    if not shallow:
        end, too_deep = value_end(text, pos)
        if too_deep is not None:
            raise JSONProblem(f"nested deeper than {MAX_DEPTH} levels", too_deep, end)
    try:
        value, stop = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        end = end if end is not None or not shallow else value_end(text, pos)[0]
        if exc.pos < len(text) and _UNDECODED.match(text, exc.pos):
            raise JSONProblem(_bad_byte(text[exc.pos]), exc.pos, end) from None
        raise JSONProblem(f"not valid JSON ({exc.msg})", exc.pos, end) from None
    except _LongInteger as exc:
        end = end if end is not None or not shallow else value_end(text, pos)[0]
        found = _LONG_INT.search(text, pos)
        raise JSONProblem(
            f"an integer of {exc.digits} digits (at most {MAX_INT_DIGITS} are read)",
            found.start() if found else pos,
            end,
        ) from None
    except (RecursionError, ValueError) as exc:
        end = end if end is not None or not shallow else value_end(text, pos)[0]
        raise JSONProblem(f"not readable JSON ({exc})", pos, end) from None
    _check_text(value, text, pos, stop)
    return value, stop


def loads(text: str) -> Any:
    """Decode a whole document (one value, white space around it), or raise ``JSONProblem``."""
    start = skip_space(text, 0)
    # Counting brackets is far cheaper than scanning tokens: a document (a webhook body)
    # with at most MAX_DEPTH of them cannot nest deeper, whatever its strings hold.
    shallow = text.count("[") + text.count("{") <= MAX_DEPTH
    value, end = decode_at(text, start, shallow=shallow)
    rest = skip_space(text, end)
    if rest < len(text):
        raise JSONProblem("not valid JSON (extra data after the value)", rest, len(text))
    return value


def loads_bytes(data: bytes) -> Any:
    """:func:`loads` over bytes decoded by :func:`text_of`."""
    return loads(text_of(data))


def _bad_byte(char: str) -> str:
    return f"byte 0x{ord(char) - 0xDC00:02x} is not UTF-8"


def _check_text(value: Any, text: str, start: int, end: int) -> None:
    """Refuse bytes that were not UTF-8 and escapes that are not Unicode."""
    undecoded = _UNDECODED.search(text, start, end)
    if undecoded:
        raise JSONProblem(_bad_byte(undecoded.group()), undecoded.start(), end)
    if "\\u" not in text[start:end]:
        return  # a lone surrogate can only come from an escape
    problem = lone_surrogate(value)
    if problem is not None:
        raise JSONProblem(problem, start, end)


def lone_surrogate(value: Any) -> str | None:
    """Name the first string in ``value`` holding a lone surrogate (it cannot be encoded), if any."""
    if not _any_surrogate(value):
        return None  # the usual case, found without building every string's location
    for location, string in _strings(value):
        found = _SURROGATE.search(string)
        if found:
            return (
                f"field {dotted_path(location)}: not valid Unicode "
                f"(lone surrogate \\u{ord(found.group()):04x})"
            )
    return None


def _any_surrogate(value: Any) -> bool:
    """Whether ``value`` may hold a surrogate: ``False`` is certain, ``True`` asks for the walk.

    ``repr`` (one C pass) writes every surrogate as a ``\\udXXX`` escape, never as
    the character, so a text without ``\\ud`` has none. A string that merely
    holds a backslash before ``ud`` only costs the exact walk.
    """
    try:
        return "\\ud" in repr(value)
    except RecursionError:  # nested past the interpreter's limit: walk it iteratively
        return True


def _strings(value: Any) -> Iterator[tuple[list[str | int], str]]:
    """Every string in ``value`` (keys too) with its location; iterative, so depth costs no stack."""
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack:
        location, item = stack.pop()
        if isinstance(item, str):
            yield location, item
        elif isinstance(item, dict):
            for key, child in item.items():
                yield [*location, key], key
                stack.append(([*location, key], child))
        elif isinstance(item, list):
            stack.extend(([*location, i], child) for i, child in enumerate(item))


class LineCounter:
    """Line numbers of offsets in one text, counted incrementally for forward scans."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._offset = 0
        self._line = 1

    def line(self, offset: int) -> int:
        """The 1-based line of ``offset``."""
        if offset < self._offset:
            self._offset, self._line = 0, 1
        self._line += self._text.count("\n", self._offset, offset)
        self._offset = offset
        return self._line
