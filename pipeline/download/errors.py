"""The exception tree of ``pipeline.download``.

::

    TrackArchiveError
     └── DownloadError                          base of everything raised here
          ├── UrlRefused       (also ValueError)  a URL or redirect hop the safety rules refuse
          └── TransferFailed                      one attempt failed (internal: ``fetch``
               │                                  turns these into a failed result)
               ├── TransientFailure               worth another attempt (reset, 5xx, 429, slow)
               ├── NotYetAvailable                403/404: retried during the grace period
               └── PermanentFailure               another attempt cannot help

``Downloader.fetch`` never raises these for a per-file problem: it returns a
``DownloadResult`` with ``ok=False`` and the reason. ``check_url`` raises
``UrlRefused`` so a receiver can reject a webhook early.
"""

from __future__ import annotations

from pipeline.errors import TrackArchiveError


class DownloadError(TrackArchiveError):
    """Base of every error of the download engine."""


class UrlRefused(DownloadError, ValueError):
    """The URL (or a redirect hop) is not one the safety rules allow fetching."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"refused {url}: {reason}")


class TransferFailed(DownloadError):
    """One attempt at a transfer failed; ``reason`` says how."""

    def __init__(self, reason: str, *, status: int | None = None):
        self.reason = reason
        self.status = status
        super().__init__(reason)


class TransientFailure(TransferFailed):
    """A failure another attempt may cure; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason, status=status)
        self.retry_after = retry_after


class NotYetAvailable(TransferFailed):
    """403 or 404: the file may become downloadable a few seconds later."""


class PermanentFailure(TransferFailed):
    """A failure that another attempt cannot cure (refused hop, too large, bad status)."""
