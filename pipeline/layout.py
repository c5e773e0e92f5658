"""Where each segment goes: ``sessionId/participantId/kind/filename``.

IDs arrive in webhooks anyone can send. Characters a key cannot safely hold
are percent-encoded (their UTF-8 bytes): the separators ``/`` and ``\\``, ``%``
itself (so decoding is unambiguous), characters shells, URLs and file systems
treat specially, white space, and every control, format, private-use or
unassigned code point. Other Unicode letters stay as they are, so a name in
any script stays readable and short. The mapping is reversible and two
different IDs never share a key; nothing is dropped. Components that are
empty, ``.`` or ``..``, or that are not valid Unicode, are refused.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, unquote

from .errors import UnsafeIdentifier

MANIFEST_NAME = "manifest.json"
#: The folder of a session's exports, beside its participants' folders. An encoded
#: component holds ``%`` only before two hex digits, so no participant ID maps here.
EXPORTS_DIR = "%exports"
#: A file name on local disk holds 255 bytes; leave room for a conflict suffix.
MAX_COMPONENT_BYTES = 230
_ALWAYS_ENCODED = frozenset('/\\%#?*:"<>|')
#: Unicode categories encoded: controls, format, surrogates, private use, unassigned, separators.
_ENCODED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_CONFLICT_SUFFIX = re.compile(r"\.conflict-[0-9a-f]{12}$")


def encode_component(value: str, *, what: str) -> str:
    """Turn one identifier into a safe key component, or raise ``UnsafeIdentifier``."""
    if value in ("", ".", ".."):
        raise UnsafeIdentifier(f"{what} {value!r} cannot be used as a path component")
    if any(unicodedata.category(c) == "Cs" for c in value):
        raise UnsafeIdentifier(f"{what} {value!r} is not valid Unicode (lone surrogate)")
    encoded = "".join(_encode_char(c) for c in value)
    if len(encoded.encode()) > MAX_COMPONENT_BYTES:
        raise UnsafeIdentifier(
            f"{what} is too long to be a key component ({len(encoded)} bytes encoded)"
        )
    return encoded


def _encode_char(char: str) -> str:
    if char in _ALWAYS_ENCODED or unicodedata.category(char) in _ENCODED_CATEGORIES:
        return quote(char, safe="")
    return char


def decode_component(component: str) -> str:
    """The original identifier of an encoded component."""
    return unquote(component)


def session_prefix(session_id: str) -> str:
    """The key prefix of one session's objects."""
    return encode_component(session_id, what="sessionId") + "/"


def manifest_key(session_id: str) -> str:
    """The key of a session's manifest."""
    return session_prefix(session_id) + MANIFEST_NAME


def segment_key(session_id: str, participant_id: str, kind: str, filename: str) -> str:
    """The final key of one segment."""
    return "/".join(
        (
            encode_component(session_id, what="sessionId"),
            encode_component(participant_id, what="participantId"),
            encode_component(kind, what="kind"),
            encode_component(filename, what="filename"),
        )
    )


def export_prefix(session_id: str) -> str:
    """The key prefix of a session's exports inside the archive."""
    return session_prefix(session_id) + EXPORTS_DIR + "/"


def export_name(participant_id: str | None, pair: str, mode: str, extension: str) -> str:
    """The file name of one export: ``<participantId>.<pair>.<mode>.<ext>``, or ``mix.<ext>``.

    The suffix after the encoded ID has a fixed shape, so two different exports
    never share a name, whatever dots an ID holds.
    """
    if participant_id is None:
        return f"mix.{extension}"
    encoded = encode_component(participant_id, what="participantId")
    return f"{encoded}.{pair}.{mode}.{extension}"


def conflict_key(key: str, sha256: str) -> str:
    """A distinct key for different content that arrived for an occupied key.

    The suffix goes before the extension so players still recognise the file:
    ``a.webm`` -> ``a.conflict-<sha256[:12]>.webm``.
    """
    head, _, name = key.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    tagged = f"{stem}.conflict-{sha256[:12]}" + (f".{ext}" if ext else "")
    return f"{head}/{tagged}" if head else tagged


def is_conflict_copy(key: str) -> bool:
    """Whether ``key`` was written by :func:`conflict_key`."""
    stem = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return bool(_CONFLICT_SUFFIX.search(stem))
