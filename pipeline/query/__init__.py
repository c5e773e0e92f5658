"""Questions asked of an archive's manifests, from a local, incrementally refreshed index.

``list_sessions``, ``list_segments`` and ``list_exports`` return typed rows; ``render`` prints
them as a table, JSON or CSV.
"""

from .api import (
    list_exports,
    list_segments,
    list_sessions,
    query_exports,
    query_segments,
    query_sessions,
)
from .format import FORMATS, Format, render
from .index import IndexUnavailable, ManifestIndex, RefreshStats, index_path_for
from .rows import ExportRow, SegmentRow, SessionRow

__all__ = [
    "FORMATS",
    "ExportRow",
    "Format",
    "IndexUnavailable",
    "ManifestIndex",
    "RefreshStats",
    "SegmentRow",
    "SessionRow",
    "index_path_for",
    "list_exports",
    "list_segments",
    "list_sessions",
    "query_exports",
    "query_segments",
    "query_sessions",
    "render",
]
