"""The stand-in's webhook signing key: a fresh RSA pair made at startup.

It signs exactly as the recording service documents: RSA-SHA256 (PKCS#1
v1.5) over the raw body, base64 in the ``videosdk-signature`` header.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class SigningKey:
    """A throwaway key pair for one stand-in run."""

    def __init__(self, key_size: int = 2048) -> None:
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)

    def sign(self, body: bytes) -> str:
        """The ``videosdk-signature`` header value for ``body``."""
        signature = self._private.sign(body, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    @property
    def public_pem(self) -> str:
        """The public half as SPKI PEM, as ``GET /v2/public/rsa-public-key`` serves it."""
        return (
            self._private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )
