"""Where each segment goes: ``sessionId/participantId/kind/filename``.

IDs arrive in webhooks anyone can send. Characters a key cannot safely hold
are percent-encoded (their UTF-8 bytes): the separators ``/`` and ``\\``, ``%``
itself (so decoding is unambiguous), characters shells, URLs and file systems
treat specially, white space, and every control, format, private-use or
unassigned code point. Other Unicode letters stay as they are, so a name in
any script stays readable and short. The mapping is reversible and two
different IDs never share a key; nothing is dropped. Empty IDs, IDs that are
not valid Unicode and IDs too long for a file name are refused.

Nothing an ID can spell collides with the tool's own names, because the
encoding never produces them:

* a leading ``.`` is encoded, so no ID reaches the storage layer's own
  ``.track-archive…`` names (temporary files, locks) or any hidden name, and
  ``.`` and ``..`` become ordinary names (``%2E``, ``%2E.``);
* ``%`` is always encoded, so an encoded ID holds ``%`` only before two hex
  digits, and every component starting with ``%`` and anything else belongs
  to the tool (:func:`reserved_component`: a session's ``%exports``);
* an ID spelling ``manifest.json`` (in any case) has its ``.`` encoded, so a
  participant cannot turn ``<session>/manifest.json`` into a folder.

Ordinary IDs keep the keys they always had. Every key built here passes the
storage key rule, and leaves room for the names derived from it (a conflict
copy's suffix, see :func:`conflict_key`).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, unquote

from storage_backends.keys import MAX_COMPONENT_BYTES as MAX_NAME_BYTES
from storage_backends.keys import fit_name

from .errors import UnsafeIdentifier

MANIFEST_NAME = "manifest.json"
#: Starts every name the tool reserves for itself beside encoded IDs (see
#: :func:`reserved_component`): an encoded ID holds ``%`` only before two hex digits.
RESERVED_MARK = "%"
#: ``.conflict-`` and 12 hex digits, added to a name by :func:`conflict_key`.
_CONFLICT_SUFFIX_BYTES = len(".conflict-") + 12
#: An encoded ID leaves room for a conflict suffix within a file name's 255 bytes.
MAX_COMPONENT_BYTES = MAX_NAME_BYTES - _CONFLICT_SUFFIX_BYTES
#: A reserved name: lower-case, and not starting like a percent-escape (two hex digits).
_RESERVED_NAME = re.compile(r"(?![0-9a-f]{2})[a-z0-9][a-z0-9_-]{0,63}")
_HEX_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_ALWAYS_ENCODED = frozenset('/\\%#?*:"<>|')
#: Unicode categories encoded: controls, format, surrogates, private use, unassigned, separators.
_ENCODED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_CONFLICT_SUFFIX = re.compile(r"\.conflict-[0-9a-f]{12}(\.[^.]*)?$")
#: ASCII letters, digits, ``.``, ``_`` and ``-``: characters :func:`encode_component` keeps as
#: they are (a leading ``.`` and ``manifest.json`` are still handled after).
_PLAIN = re.compile(r"[A-Za-z0-9._-]+")


def encode_component(value: str, *, what: str) -> str:
    """Turn one identifier into a safe key component, or raise ``UnsafeIdentifier``."""
    if value == "":
        raise UnsafeIdentifier(f"{what} is empty and cannot be used as a path component")
    if _PLAIN.fullmatch(value):
        encoded = value  # the usual ID: nothing in it is ever encoded
    else:
        if any(unicodedata.category(c) == "Cs" for c in value):
            raise UnsafeIdentifier(f"{what} {value!r} is not valid Unicode (lone surrogate)")
        encoded = "".join(_encode_char(c) for c in value)
    if encoded[0] == ".":
        encoded = "%2E" + encoded[1:]
    elif encoded.lower() == MANIFEST_NAME:
        encoded = encoded.replace(".", "%2E")
    size = len(encoded.encode())
    if size > MAX_COMPONENT_BYTES:
        raise UnsafeIdentifier(
            f"{what} is too long to be a key component ({size} bytes encoded, "
            f"at most {MAX_COMPONENT_BYTES})"
        )
    return encoded


def _encode_char(char: str) -> str:
    if char in _ALWAYS_ENCODED or unicodedata.category(char) in _ENCODED_CATEGORIES:
        return quote(char, safe="")
    return char


def decode_component(component: str) -> str:
    """The original identifier of an encoded component."""
    return unquote(component)


def reserved_component(name: str) -> str:
    """The key component of one of the tool's own names, e.g. ``"exports"`` -> ``"%exports"``.

    No encoded ID ever starts with ``%`` followed by anything but two hex
    digits, so a reserved name sits beside IDs (``<session>/%exports/...``)
    without any ID reaching it. ``name`` is lower-case letters, digits, ``-``
    and ``_``, and does not start with two hex digits.
    """
    if not _RESERVED_NAME.fullmatch(name):
        raise ValueError(
            f"reserved name {name!r} must be lower-case letters, digits, - or _, "
            "not starting with two hex digits"
        )
    return RESERVED_MARK + name


def is_reserved_component(component: str) -> bool:
    """Whether a key component is one of the tool's own names, not an encoded ID."""
    return component.startswith(RESERVED_MARK) and not _HEX_ESCAPE.match(component)


#: The folder of a session's exports, beside its participants' folders.
EXPORTS_DIR = reserved_component("exports")


def session_prefix(session_id: str) -> str:
    """The key prefix of one session's objects."""
    return encode_component(session_id, what="sessionId") + "/"


def is_manifest_key(key: str) -> bool:
    """Whether ``key`` is a session manifest (``<session>/manifest.json``)."""
    head, sep, tail = key.partition("/")
    return bool(head) and sep == "/" and tail == MANIFEST_NAME


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
    # Shortened (with a digest) only where the whole would not fit a file name.
    return fit_name(encoded, f".{pair}.{mode}.{extension}")


def conflict_key(key: str, sha256: str) -> str:
    """A distinct key for different content that arrived for an occupied key.

    The suffix goes before the extension so players still recognise the file:
    ``a.webm`` -> ``a.conflict-<sha256[:12]>.webm``.
    """
    head, _, name = key.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    # Layout keys always leave room for the suffix; any other key is shortened to fit.
    tagged = fit_name(stem, f".conflict-{sha256[:12]}" + (f".{ext}" if ext else ""))
    return f"{head}/{tagged}" if head else tagged


def is_conflict_copy(key: str) -> bool:
    """Whether ``key`` was written by :func:`conflict_key`."""
    return bool(_CONFLICT_SUFFIX.search(key.rsplit("/", 1)[-1]))
