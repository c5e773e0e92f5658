"""Checking the ``videosdk-signature`` header of a webhook delivery.

The service signs with RSA-SHA256 (PKCS#1 v1.5) and sends the signature in
base64. Its newer documentation signs the raw body; an older sample verifies
the body re-serialized compactly (``JSON.stringify``). The raw bytes are tried
first; the compact form only when they fail, and only for a body that is
already within the size limit.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..jsontext import JSONProblem, loads_bytes
from .errors import PublicKeyError, SignatureRejected

SIGNATURE_HEADER = "videosdk-signature"
#: A 16384-bit RSA signature is 2048 bytes; anything longer is not a signature.
_MAX_SIGNATURE_CHARS = 4096


def load_public_key(data: bytes | str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (``PUBLIC KEY`` or PKCS#1 ``RSA PUBLIC KEY``), or from the
    bare base64 body of either (the service hands out its PKCS#1 key without armour)."""
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    # A key copied out of a JSON answer may keep its line breaks escaped.
    text = text.replace("\\n", "\n").strip()
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode("ascii", "replace"))
        else:
            der = base64.b64decode("".join(text.split()), validate=True)
            # Parsed as SubjectPublicKeyInfo, else as a PKCS#1 RSAPublicKey.
            key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise PublicKeyError(
            "not a readable public key: expected PEM, or the base64 body of an SPKI "
            f"or PKCS#1 RSA key ({exc})"
        ) from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise PublicKeyError(f"expected an RSA public key, found {type(key).__name__}")
    return key


def read_public_key(path: Path) -> rsa.RSAPublicKey:
    """Load the public key stored at ``path``."""
    try:
        return load_public_key(path.read_bytes())
    except OSError as exc:
        raise PublicKeyError(f"{path}: cannot read the public key ({exc.strerror})") from exc
    except PublicKeyError as exc:
        raise PublicKeyError(f"{path}: {exc}") from exc


def compact_json(body: bytes) -> bytes | None:
    """The body as ``JSON.stringify`` would write it, or ``None`` if it is not JSON."""
    try:
        value = loads_bytes(body)
    except JSONProblem:
        return None  # too deep, too long a number, not UTF-8: it cannot be the signed form
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class SignatureVerifier:
    """Verifies webhook bodies against one RSA public key."""

    def __init__(self, key: rsa.RSAPublicKey, *, allow_compact: bool = True) -> None:
        self.key = key
        self.allow_compact = allow_compact
        # The scheme's objects are immutable: built once, not for every delivery.
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()

    @classmethod
    def from_file(cls, path: Path) -> SignatureVerifier:
        """A verifier for the PEM key stored at ``path``."""
        return cls(read_public_key(path))

    def _valid(self, signature: bytes, message: bytes) -> bool:
        try:
            self.key.verify(signature, message, self._padding, self._hash)
        except InvalidSignature:
            return False
        return True

    def verify(self, body: bytes, header: str | None) -> str:
        """Raise ``SignatureRejected`` unless ``header`` signs ``body``; return the form that matched."""
        if header is None or not header.strip():
            raise SignatureRejected(f"missing {SIGNATURE_HEADER} header")
        if len(header) > _MAX_SIGNATURE_CHARS:
            raise SignatureRejected(f"{SIGNATURE_HEADER} header is too long")
        try:
            signature = base64.b64decode("".join(header.split()), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureRejected(f"{SIGNATURE_HEADER} header is not base64") from None
        if self._valid(signature, body):
            return "raw"
        if self.allow_compact:
            compact = compact_json(body)
            if compact is not None and compact != body and self._valid(signature, compact):
                return "compact"
        raise SignatureRejected("signature does not match the body")


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    """The key as SPKI PEM text (what ``public-key fetch`` stores)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
