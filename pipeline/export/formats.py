"""Output formats: muxers, file extensions, and which codecs each one can carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ExportUnsupported, ExportUsageError

FORMATS = ("mkv", "webm", "mp4")
MODES = ("copy", "normalize")
DEFAULT_FORMAT = {"copy": "mkv", "normalize": "mp4"}

#: FFmpeg muxer and options per format. MP4's index goes to the front so players
#: can start before the whole file has arrived; Matroska writes Cues when it can seek.
MUXERS: dict[str, tuple[str, dict[str, str]]] = {
    "mkv": ("matroska", {}),
    "webm": ("webm", {}),
    "mp4": ("mp4", {"movflags": "+faststart"}),
}
#: Extension of an audio-only file (the mix) per format.
AUDIO_EXTENSIONS = {"mkv": "mka", "webm": "weba", "mp4": "m4a"}
CONTENT_TYPES = {
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    "mp4": "video/mp4",
    "mka": "audio/x-matroska",
    "weba": "audio/webm",
    "m4a": "audio/mp4",
}

#: Codecs each container accepts unchanged in copy mode (Matroska takes them all).
_COPY_CODECS: dict[str, frozenset[str] | None] = {
    "mkv": None,
    "webm": frozenset({"vp8", "vp9", "av1", "opus", "vorbis"}),
    "mp4": frozenset({"h264", "hevc", "av1", "vp9", "aac", "opus", "mp3"}),
}


@dataclass(frozen=True, slots=True)
class Encoding:
    """The encoders normalize mode and the mix use for one format."""

    video_codec: str
    video_options: dict[str, str]
    audio_codec: str
    audio_rate: int
    audio_format: str
    #: Bits per second for each channel.
    audio_bit_rate: int


#: Speech: 64 kb/s AAC or 48 kb/s Opus per channel is transparent enough for editing and transcription.
_H264 = {"preset": "veryfast", "crf": "23"}
_VP8 = {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "1M"}
ENCODINGS = {
    "mp4": Encoding("libx264", _H264, "aac", 48000, "fltp", 64000),
    "mkv": Encoding("libx264", _H264, "aac", 48000, "fltp", 64000),
    "webm": Encoding("libvpx", _VP8, "libopus", 48000, "s16", 48000),
}


def resolve_format(mode: str, fmt: str | None) -> str:
    """The format to write: the one asked for, else the mode's default."""
    if mode not in MODES:
        raise ExportUsageError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    fmt = fmt or DEFAULT_FORMAT[mode]
    if fmt not in FORMATS:
        raise ExportUsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return fmt


def check_copy_codecs(fmt: str, codec: str | None, where: Any) -> None:
    """Refuse early when copy mode would put ``codec`` in a container that cannot hold it."""
    allowed = _COPY_CODECS[fmt]
    if codec is None or allowed is None or codec in allowed:
        return
    raise ExportUnsupported(
        f"{where.participant_id} {where.kind}: {codec} cannot be copied into {fmt}; "
        "use --format mkv, or --mode normalize to re-encode"
    )
