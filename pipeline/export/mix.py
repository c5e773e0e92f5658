"""``--mix``: every participant's audio summed on the session timeline, for transcription.

Each audio track (microphone or screen-share audio, per participant) becomes a
gap-filled line from time zero (see ``audio.AudioLine``); FFmpeg's ``amix``
filter adds the lines sample by sample without scaling them down, so a voice
is as loud in the mix as in its own track. Where voices overlap the sum can
pass full scale, which an integer encoder (Opus takes 16-bit samples) would
clip into distortion: a look-ahead limiter (``alimiter``, its delay
compensated) turns the gain down just there, so the mix never goes beyond
``LIMIT``. The mix is as long as the session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from storage_backends import Backend

from .audio import AudioEncoder, AudioLine
from .errors import ExportUnsupported
from .formats import ENCODINGS, MUXERS
from .timeline import Placement, Written

#: Timeline seconds mixed per step.
STEP_SECONDS = 1.0
_LAYOUT = "mono"
#: The mixer's working format: float, so summing voices cannot wrap around.
_MIX_FORMAT = "fltp"
#: The limiter's ceiling: 1 dB below full scale, headroom for the lossy encoder's overshoot.
LIMIT = 0.891


def _lines(placements: Sequence[Placement]) -> list[list[Placement]]:
    """The placements grouped into tracks: one line per participant and audio kind."""
    grouped: dict[tuple[str, str], list[Placement]] = {}
    for placement in placements:
        grouped.setdefault((placement.participant_id, placement.kind), []).append(placement)
    return [sorted(group, key=lambda p: p.offset) for group in grouped.values()]


def _graph(count: int, rate: int, out_format: str) -> tuple[Any, list[Any], Any]:
    graph = av.filter.Graph()
    sources = [
        graph.add_abuffer(
            sample_rate=rate, format=_MIX_FORMAT, layout=_LAYOUT, time_base=Fraction(1, rate)
        )
        for _ in range(count)
    ]
    mixer = graph.add("amix", f"inputs={count}:duration=longest:dropout_transition=0:normalize=0")
    # level=0: only ever turn loud stretches down, never raise the rest; latency=1: no delay.
    limiter = graph.add("alimiter", f"limit={LIMIT}:level=0:latency=1")
    convert = graph.add("aformat", f"sample_fmts={out_format}:channel_layouts={_LAYOUT}")
    sink = graph.add("abuffersink")
    for index, source in enumerate(sources):
        source.link_to(mixer, 0, index)
    mixer.link_to(limiter)
    limiter.link_to(convert)
    convert.link_to(sink)
    graph.configure()
    return graph, sources, sink


def _pull(sink: Any) -> list[Any]:
    frames = []
    while True:
        try:
            frames.append(sink.pull())
        except (av.error.BlockingIOError, av.error.EOFError):
            return frames


def write_mix(
    backend: Backend,
    placements: Sequence[Placement],
    session_end: float,
    path: Path,
    fmt: str,
    *,
    progress: Callable[[float], None] | None = None,
    temp_dir: Path | None = None,
) -> Written:
    """Mix every audio placement into ``path``, from time zero to ``session_end``."""
    encoding = ENCODINGS[fmt]
    muxer, options = MUXERS[fmt]
    rate = encoding.audio_rate
    lines = [
        AudioLine(backend, group, fmt=_MIX_FORMAT, layout=_LAYOUT, rate=rate, temp_dir=temp_dir)
        for group in _lines(placements)
    ]
    with ExitStack() as stack:
        for line in lines:
            stack.callback(line.close)
        try:
            output = stack.enter_context(av.open(os.fspath(path), "w", format=muxer, options=options))
            stream: Any = output.add_stream(encoding.audio_codec, rate=rate, layout=_LAYOUT)
            stream.format = encoding.audio_format
            stream.bit_rate = encoding.audio_bit_rate
            _, sources, sink = _graph(len(lines), rate, encoding.audio_format)
        except av.error.FFmpegError as exc:
            raise ExportUnsupported(f"cannot write a {fmt} mix: {exc}") from exc
        encoder = AudioEncoder(stream)
        total = round(session_end * rate)
        at = 0
        while at < total:
            step_end = min(total, at + round(STEP_SECONDS * rate))
            for line, source in zip(lines, sources, strict=True):
                for frame in line.read_until(step_end):
                    frame.pts = line.position - frame.samples
                    frame.time_base = Fraction(1, rate)
                    source.push(frame)
            _mux(output, encoder.write(iter(_strip(_pull(sink)))))
            if progress is not None:
                progress((step_end - at) / rate)
            at = step_end
        for line in lines:
            line.finish()
        for source in sources:
            source.push(None)
        _mux(output, encoder.write(iter(_strip(_pull(sink)))))
        _mux(output, encoder.finish())
    return Written(0.0, session_end)


def _mux(output: Any, packets: list[Any]) -> None:
    for packet in packets:
        output.mux(packet)


def _strip(frames: list[Any]) -> list[Any]:
    # The encoder side numbers samples itself; the fifo refuses frames whose pts jump.
    for frame in frames:
        frame.pts = None
    return frames
