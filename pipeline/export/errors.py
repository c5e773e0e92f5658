"""The exception tree of ``pipeline.export``.

::

    TrackArchiveError
     └── ExportError
          ├── SessionNotFound     (also LookupError)  no manifest for the session
          ├── ExportUsageError    (also ValueError)   options that cannot work together
          ├── SegmentCorrupt      (also ValueError)   a segment's bytes differ from its SHA-256
          ├── SegmentUnreadable   (also ValueError)   a segment cannot be demuxed or decoded
          ├── ExportUnsupported   (also ValueError)   copy mode cannot put these codecs there
          └── ExportWriteFailed   (also OSError)      encoding, muxing or the scratch disk failed

Every segment error names the segment's key; FFmpeg's errors (``av.error.FFmpegError``)
are translated where the media is opened and read.
"""

from __future__ import annotations

from ..errors import TrackArchiveError


class ExportError(TrackArchiveError):
    """Base of every error an export raises on purpose."""


class SessionNotFound(ExportError, LookupError):
    """The archive holds no manifest for the session."""


class ExportUsageError(ExportError, ValueError):
    """The options asked for cannot work together (exit 2 on the command line)."""


class SegmentError(ExportError, ValueError):
    """A problem with one archived segment; ``key`` names it."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"segment {key}: {reason}")


class SegmentCorrupt(SegmentError):
    """The segment's bytes do not match the SHA-256 its manifest records."""


class SegmentUnreadable(SegmentError):
    """The segment cannot be demuxed or decoded."""


class ExportUnsupported(ExportError, ValueError):
    """Copy mode cannot write these codecs to that container, or mixes codecs in one stream."""


class ExportWriteFailed(ExportError, OSError):
    """The export could not be written: FFmpeg failed to encode or mux, or local disk failed."""
