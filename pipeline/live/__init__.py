"""Live mode: the webhook receiver, its workers, the recording API client and reconcile.

The names below load with the module that holds them, on first use: asking
for an error class or the signature check does not start the web stack, the
archiver or httpx (``serve`` can refuse a bad configuration at once).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .errors import (
        ApiArgumentError,
        LiveError,
        PublicKeyError,
        RecordingApiError,
        SignatureRejected,
    )
    from .signature import SIGNATURE_HEADER, SignatureVerifier, load_public_key, read_public_key
    from .webhook import WEBHOOK_PATH

#: Public name -> the module under ``pipeline.live`` that defines it.
_HOMES = {
    "SIGNATURE_HEADER": "signature",
    "WEBHOOK_PATH": "webhook",
    "ApiArgumentError": "errors",
    "LiveError": "errors",
    "PublicKeyError": "errors",
    "RecordingApiError": "errors",
    "SignatureRejected": "errors",
    "SignatureVerifier": "signature",
    "create_app": "app",
    "load_public_key": "signature",
    "read_public_key": "signature",
}

__all__ = [
    "SIGNATURE_HEADER",
    "WEBHOOK_PATH",
    "ApiArgumentError",
    "LiveError",
    "PublicKeyError",
    "RecordingApiError",
    "SignatureRejected",
    "SignatureVerifier",
    "create_app",
    "load_public_key",
    "read_public_key",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
