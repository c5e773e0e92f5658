"""The archive pipeline: journaled deliveries to verified objects and manifests."""

from .archiver import Archiver, Outcome, RetryPolicy, RunSummary, summarise
from .manifests import flush_manifests
from .segments import plan_segments, segment_id

__all__ = [
    "Archiver",
    "Outcome",
    "RetryPolicy",
    "RunSummary",
    "flush_manifests",
    "plan_segments",
    "segment_id",
    "summarise",
]
