"""The state journal: deliveries and segment states, durable across crashes."""

from .base import EventRecord, Journal, NewEvent, NewSegment, SegmentRecord, SegmentState
from .leases import worker_name
from .results import Refusal, VerifiedDownload
from .sqlite import SQLiteJournal

__all__ = [
    "EventRecord",
    "Journal",
    "NewEvent",
    "NewSegment",
    "Refusal",
    "SQLiteJournal",
    "SegmentRecord",
    "SegmentState",
    "VerifiedDownload",
    "worker_name",
]
