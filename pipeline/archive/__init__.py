"""The archive pipeline: journaled deliveries to verified objects and manifests."""

from .archiver import Archiver, Outcome, RetryPolicy, RunSummary, summarise
from .manifests import flush_manifests
from .recheck import Recheck, recheck_done
from .segments import plan_segments, segment_id

__all__ = [
    "Archiver",
    "Outcome",
    "Recheck",
    "RetryPolicy",
    "RunSummary",
    "flush_manifests",
    "plan_segments",
    "recheck_done",
    "segment_id",
    "summarise",
]
