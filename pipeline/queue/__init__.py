"""Running on many machines: a Celery app, its tasks, and the pieces around them.

Receivers and ``archive --broker`` publish one task per segment to the broker;
``track-archive worker`` processes on any number of machines archive them with
the same download, verification and store code as ``archive``, and merge the
finished entries into each session's manifest in batches. Nothing here needs a
disk shared between machines: the archive root and the quarantine are backend
URLs, each worker's staging directory is its own.
"""

from .app import MANIFEST_QUEUE, SEGMENT_QUEUE, SEGMENT_TASK, BrokerSettings, make_app
from .errors import BrokerUnavailable, MalformedMessage, QueueError
from .messages import SegmentJob

__all__ = [
    "MANIFEST_QUEUE",
    "SEGMENT_QUEUE",
    "SEGMENT_TASK",
    "BrokerSettings",
    "BrokerUnavailable",
    "MalformedMessage",
    "QueueError",
    "SegmentJob",
    "make_app",
]
