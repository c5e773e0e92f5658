"""Playable exports of archived sessions: one aligned, seekable file per participant pair.

``export_session`` reads only the segments a session's manifest lists, verifying
each one's SHA-256 as it streams, and writes per participant a ``camera``
(audio + video) and a ``screen`` (screen_audio + screen_video) file, remuxed
(``copy``) or re-encoded onto the session timeline (``normalize``), plus an
optional mix of everyone's audio. PyAV is imported only by the writers.
"""

from .api import (
    ExportedFile,
    ExportFailure,
    ExportProgress,
    ExportReport,
    ExportRequest,
    export_session,
)
from .errors import (
    ExportError,
    ExportUnsupported,
    ExportUsageError,
    ExportWriteFailed,
    SegmentCorrupt,
    SegmentError,
    SegmentUnreadable,
    SessionNotFound,
)
from .formats import DEFAULT_FORMAT, FORMATS, MODES
from .timeline import PAIRS, Placement, Timeline, Track, build_timeline

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "MODES",
    "PAIRS",
    "ExportError",
    "ExportFailure",
    "ExportProgress",
    "ExportReport",
    "ExportRequest",
    "ExportUnsupported",
    "ExportUsageError",
    "ExportWriteFailed",
    "ExportedFile",
    "Placement",
    "SegmentCorrupt",
    "SegmentError",
    "SegmentUnreadable",
    "SessionNotFound",
    "Timeline",
    "Track",
    "build_timeline",
    "export_session",
]
