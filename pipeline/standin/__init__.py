"""A local stand-in of the recording service: real segments, its webhooks, its CDN."""

from .meeting import Meeting, SegmentFile, generate_meeting, stopped_webhooks, track_webhook
from .server import StandInServer, build_app

__all__ = [
    "Meeting",
    "SegmentFile",
    "StandInServer",
    "build_app",
    "generate_meeting",
    "stopped_webhooks",
    "track_webhook",
]
