"""Media verification: what container a file is, and whether it is whole media of its kind."""

from pipeline.media import synth
from pipeline.media.container import ContainerInfo, sniff_bytes, sniff_container
from pipeline.media.probe import MediaReport, StreamInfo, inspect_media

__all__ = [
    "ContainerInfo",
    "MediaReport",
    "StreamInfo",
    "inspect_media",
    "sniff_bytes",
    "sniff_container",
    "synth",
]
