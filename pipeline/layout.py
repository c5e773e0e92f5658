"""Where each segment goes: ``sessionId/participantId/kind/filename``.

IDs arrive in webhooks anyone can send. A component is percent-encoded
(UTF-8, everything outside ``A-Z a-z 0-9 - . _ ~``), so the mapping is
reversible and two different IDs never share a key; nothing is dropped.
Components that are empty, ``.`` or ``..`` are refused outright.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from .errors import UnsafeIdentifier

MANIFEST_NAME = "manifest.json"
#: Keys stay well under the backends' 1024-byte limit with room for a conflict suffix.
MAX_COMPONENT_BYTES = 240
_SAFE = "-._~"
_CONFLICT_SUFFIX = re.compile(r"\.conflict-[0-9a-f]{12}$")


def encode_component(value: str, *, what: str) -> str:
    """Turn one identifier into a safe key component, or raise ``UnsafeIdentifier``."""
    if value in ("", ".", ".."):
        raise UnsafeIdentifier(f"{what} {value!r} cannot be used as a path component")
    encoded = quote(value, safe=_SAFE)
    if len(encoded.encode()) > MAX_COMPONENT_BYTES:
        raise UnsafeIdentifier(
            f"{what} is too long to be a key component ({len(encoded)} bytes encoded)"
        )
    return encoded


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
