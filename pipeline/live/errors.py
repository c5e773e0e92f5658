"""The exception tree of live mode (receiver, recording API client, reconcile).

::

    TrackArchiveError
     └── LiveError
          ├── SignatureRejected                 a webhook's signature is missing or wrong
          ├── PublicKeyError   (also ValueError) a public key cannot be read
          └── RecordingApiError                 the recording service answered with an error
               └── ApiArgumentError (also ValueError) refused before any request was sent
"""

from __future__ import annotations

from ..errors import TrackArchiveError


class LiveError(TrackArchiveError):
    """Base of every error raised by live mode."""


class SignatureRejected(LiveError):
    """A webhook body does not carry a valid ``videosdk-signature``."""


class PublicKeyError(LiveError, ValueError):
    """A PEM (or bare base64) public key cannot be loaded as an RSA key."""


class RecordingApiError(LiveError):
    """A call to the recording service failed; ``message`` is the service's own words."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str = "") -> None:
        self.message = message
        self.status = status
        self.endpoint = endpoint
        where = f"{endpoint}: " if endpoint else ""
        code = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{where}{code}{message}")


class ApiArgumentError(RecordingApiError, ValueError):
    """An argument the recording service would refuse; nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
