"""Object keys: the one place that decides which keys may be stored.

A key is a relative, ``/``-separated path such as ``sess/part/audio/a.webm``.
Keys come (indirectly) from webhook bodies written by strangers, so every
backend validates them again at its own boundary.
"""

from __future__ import annotations

from storage_backends.errors import InvalidKey

#: S3 and GCS both cap object names at 1024 bytes of UTF-8.
MAX_KEY_BYTES = 1024


def _reject(key: str, reason: str) -> InvalidKey:
    return InvalidKey(f"unsafe object key: {reason}", key=key)


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe relative object key, else raise ``InvalidKey``.

    Refused: empty or absolute keys, ``.``/``..``/empty segments, NUL and other
    control characters, backslashes, and keys over 1024 bytes of UTF-8.
    """
    if not isinstance(key, str):
        raise InvalidKey(f"object key must be a str, not {type(key).__name__}")
    if not key:
        raise _reject(key, "empty")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in key):
        raise _reject(key, "control character")
    if "\\" in key:
        raise _reject(key, "backslash")
    if key.startswith("/"):
        raise _reject(key, "absolute")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be stored anywhere
        raise _reject(key, "not valid UTF-8") from exc
    if len(encoded) > MAX_KEY_BYTES:
        raise _reject(key, f"longer than {MAX_KEY_BYTES} bytes")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise _reject(key, f"segment {segment!r} not allowed")
    return key


def validate_prefix(prefix: str) -> str:
    """Validate a listing prefix: ``""``, a key, or a key followed by one ``/``."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def join_key(*parts: str) -> str:
    """Join key parts with ``/`` and validate the result.

    Each part may itself contain ``/``; leading and trailing slashes of a part are
    not trimmed, so ``join_key("a/", "b")`` is refused (empty segment).
    """
    return validate_key("/".join(parts))
