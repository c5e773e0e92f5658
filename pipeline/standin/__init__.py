"""A local stand-in of the recording service: real segments, its webhooks, its CDN."""

from .meeting import Meeting, SegmentFile, generate_meeting, stopped_webhooks, track_webhook
from .server import StandInServer, build_app
from .service import Delivery, Recording, RecordingService
from .signing import SigningKey

__all__ = [
    "Delivery",
    "Meeting",
    "Recording",
    "RecordingService",
    "SegmentFile",
    "SigningKey",
    "StandInServer",
    "build_app",
    "generate_meeting",
    "stopped_webhooks",
    "track_webhook",
]
