"""Object keys: the one rule that decides which keys may be stored, on every backend.

A key is a relative, ``/``-separated path such as ``sess/part/audio/a.webm``.
Keys come (indirectly) from webhook bodies written by strangers. Every backend
accepts exactly the keys :func:`validate_key` accepts: ``Backend`` checks each
key once with it before calling the backend's own operation, so a key the
layout builds can never be refused by one backend and taken by another.

The rule is the intersection of what the services and a local file system can
hold: UTF-8 without control characters, backslashes or the characters the
services' own tools read as wildcards or a generation (``#``, ``?``, ``*``:
``gsutil`` and ``gcloud storage`` would misread such a name), at most 1024 bytes in
all (S3 and GCS), at most 255 bytes per component (a file name on local disk),
no empty, ``.`` or ``..`` component, and no component in the storage layer's
own name space (``INTERNAL_PREFIX``: temporary files and locks).

Names *derived* from a key (a conflict copy, a sidecar file) must fit too:
:func:`fit_name` builds them within the component limit.
"""

from __future__ import annotations

import hashlib
import re

from storage_backends.errors import InvalidKey

#: S3 and GCS both cap object names at 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024
#: A file or directory name on local disk (ext4, XFS, APFS, NTFS) holds 255 bytes.
MAX_COMPONENT_BYTES = 255
#: Components starting with this are the storage layer's own (temp files, locks).
INTERNAL_PREFIX = ".track-archive"
#: Read as wildcards (``*``, ``?``) or a generation (``#``) by the services' own tools.
_TOOL_SYNTAX = frozenset("#?*")
#: C0 controls, DEL and C1 controls (one regex scan: keys are checked on every operation).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: Bytes :func:`fit_name` keeps for the digest that keeps shortened names distinct.
_FIT_DIGEST_CHARS = 16


def _reject(key: str, reason: str, backend: str | None) -> InvalidKey:
    return InvalidKey(f"unsafe object key: {reason}", backend=backend, key=key)


def validate_key(key: str, *, max_bytes: int = MAX_KEY_BYTES, backend: str | None = None) -> str:
    """Return ``key`` unchanged if it is a safe relative object key, else raise ``InvalidKey``.

    Refused: empty or absolute keys, ``.``/``..``/empty segments, NUL and other
    control characters, backslashes, ``#?*``, segments over 255 bytes or in the internal
    name space, and keys over ``max_bytes`` (1024 by default; less under a
    bucket prefix) of UTF-8.
    """
    if not isinstance(key, str):
        raise InvalidKey(f"object key must be a str, not {type(key).__name__}", backend=backend)
    if not key:
        raise _reject(key, "empty", backend)
    if _CONTROL.search(key):
        raise _reject(key, "control character", backend)
    if "\\" in key:
        raise _reject(key, "backslash", backend)
    if not _TOOL_SYNTAX.isdisjoint(key):
        raise _reject(key, "'#', '?' and '*' are wildcard or generation syntax", backend)
    if key.startswith("/"):
        raise _reject(key, "absolute", backend)
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be stored anywhere
        raise _reject(key, "not valid UTF-8", backend) from exc
    if len(encoded) > max_bytes:
        raise _reject(key, f"longer than {max_bytes} bytes", backend)
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise _reject(key, f"segment {segment!r} not allowed", backend)
        if segment.startswith(INTERNAL_PREFIX):
            raise _reject(key, f"segment uses the reserved {INTERNAL_PREFIX} prefix", backend)
        if len(segment.encode()) > MAX_COMPONENT_BYTES:
            raise _reject(key, f"a segment is longer than {MAX_COMPONENT_BYTES} bytes", backend)
    return key


def validate_prefix(prefix: str, *, max_bytes: int = MAX_KEY_BYTES) -> str:
    """Validate a listing prefix: ``""``, a key, or a key followed by one ``/``."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix, max_bytes=max_bytes)
    return prefix


def join_key(*parts: str) -> str:
    """Join key parts with ``/`` and validate the result.

    Each part may itself contain ``/``; leading and trailing slashes of a part are
    not trimmed, so ``join_key("a/", "b")`` is refused (empty segment).
    """
    return validate_key("/".join(parts))


def fit_name(name: str, suffix: str, *, limit: int = MAX_COMPONENT_BYTES) -> str:
    """``name + suffix``, with ``name`` shortened when the whole would pass ``limit`` bytes.

    A shortened name keeps its first characters and gains ``~`` and a digest of
    the whole name, so two long names that share a beginning stay distinct.
    Use it for every name derived from a key component (sidecar files, copies).
    """
    whole = name + suffix
    if len(whole.encode()) <= limit:
        return whole
    tag = (
        "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_FIT_DIGEST_CHARS]
    )
    room = limit - len(tag.encode()) - len(suffix.encode())
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room for a name within {limit} bytes")
    head = name.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
    return head + tag + suffix
