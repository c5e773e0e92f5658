"""Per-session manifests: the model, the merge, and storage with compare-and-swap."""

from .merge import ManifestUpdate, merge
from .model import (
    ExportEntry,
    ExportSource,
    Failure,
    KindSummary,
    LifecycleEntry,
    Manifest,
    Segment,
    Stream,
    segment_order,
    utcnow,
)
from .store import ManifestUnreadable, read_manifest, update_manifest

__all__ = [
    "ExportEntry",
    "ExportSource",
    "Failure",
    "KindSummary",
    "LifecycleEntry",
    "Manifest",
    "ManifestUnreadable",
    "ManifestUpdate",
    "Segment",
    "Stream",
    "merge",
    "read_manifest",
    "segment_order",
    "update_manifest",
    "utcnow",
]
