"""Live mode: the webhook receiver, its workers, the recording API client and reconcile."""

from .app import WEBHOOK_PATH, create_app
from .errors import (
    ApiArgumentError,
    LiveError,
    PublicKeyError,
    RecordingApiError,
    SignatureRejected,
)
from .signature import SIGNATURE_HEADER, SignatureVerifier, load_public_key, read_public_key

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
