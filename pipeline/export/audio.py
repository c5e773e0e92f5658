"""One audio track laid on the session timeline as a continuous stream of samples.

Segments are decoded one after another and converted to one sample format,
layout and rate. Every decoded frame goes to the sample position its timestamp
gives on the session timeline; the space before it, between segments and after
the last one is filled with silence. What comes out starts at time zero and
has no holes, so an encoder (normalize) or a mixer (mix) can take it as is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from storage_backends import Backend

from .prefetch import Prefetch
from .reader import open_segment
from .timeline import Placement

#: Largest silent frame made at once, so a long gap costs no more memory than a short one.
MAX_SILENCE = 48000
#: Decoded audio frames handed from the decoding thread at once (20 ms each from Opus).
AUDIO_BATCH = 256
#: A frame this close to where the previous one ended is taken as contiguous.
CONTIGUOUS_SAMPLES = 48


def silence(samples: int, fmt: str, layout: str, rate: int) -> Any:
    """A silent ``av.AudioFrame`` (zero is silence in every PCM format FFmpeg encoders take)."""
    frame = av.AudioFrame(format=fmt, layout=layout, samples=samples)
    frame.sample_rate = rate
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    return frame


class AudioLine:
    """A track's audio as frames covering ``[0, end)`` of the timeline without holes."""

    def __init__(
        self,
        backend: Backend,
        placements: Sequence[Placement],
        *,
        fmt: str,
        layout: str,
        rate: int,
        temp_dir: Path | None = None,
    ) -> None:
        self._backend = backend
        self._placements = placements
        self._temp_dir = temp_dir
        self.fmt, self.layout, self.rate = fmt, layout, rate
        #: Samples handed out so far: the timeline position of the next one.
        self.position = 0
        # Decoding and resampling run a little ahead on their own thread.
        # Frames of a few kilobytes: hand them over a few seconds' worth at a time.
        self._source = Prefetch(
            self._timed_frames(), name="export-audio", batch=AUDIO_BATCH, depth=4 * AUDIO_BATCH
        )
        self._pending: tuple[int, Any] | None = None

    def _timed_frames(self) -> Iterator[tuple[int, Any]]:
        """``(timeline sample index, frame in the output format)`` for every decoded frame."""
        for placement in self._placements:
            with open_segment(
                self._backend, placement.segment, "audio", temp_dir=self._temp_dir
            ) as segment:
                resampler = av.AudioResampler(format=self.fmt, layout=self.layout, rate=self.rate)
                tb = float(segment.stream.time_base)
                origin = segment.stream.start_time
                at: int | None = None
                for frame in segment.frames():
                    if frame.pts is not None:
                        if origin is None:
                            origin = frame.pts
                        at = round((placement.offset + (frame.pts - origin) * tb) * self.rate)
                    elif at is None:
                        at = round(placement.offset * self.rate)
                    for out in resampler.resample(frame):
                        yield at, out
                        at += out.samples
                for out in resampler.resample(None):
                    yield at or 0, out
                segment.verify()

    def read_until(self, end_sample: int) -> Iterator[Any]:
        """Frames (``pts`` unset) covering ``[position, end_sample)``, silence where nothing plays."""
        while self.position < end_sample:
            if self._pending is None:
                self._pending = next(self._source, None)
                if self._pending is None:
                    yield from self._silence_until(end_sample)
                    return
            at, frame = self._pending
            if at > self.position + CONTIGUOUS_SAMPLES:
                yield from self._silence_until(min(at, end_sample))
                continue
            # Contiguous (or a hair early, as rounding goes): it plays from here.
            self._pending = None
            frame.pts = None
            self.position += frame.samples
            yield frame

    def finish(self) -> None:
        """Read what is left past the end, so every segment's checksum is still verified."""
        for _ in self._source:
            pass

    def close(self) -> None:
        """Stop the decoding thread (after an error elsewhere)."""
        self._source.close()

    def _silence_until(self, end_sample: int) -> Iterator[Any]:
        while self.position < end_sample:
            count = min(MAX_SILENCE, end_sample - self.position)
            self.position += count
            yield silence(count, self.fmt, self.layout, self.rate)


class AudioEncoder:
    """Feeds frames of any length to an encoder in the frame size it needs.

    Returns the packets rather than muxing them, so encoding can run on another
    thread while the caller muxes in order.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._fifo = av.AudioFifo()
        self._frame_size = stream.codec_context.frame_size or 1024
        self._time_base = Fraction(1, stream.codec_context.sample_rate)
        self._pts = 0

    def write(self, frames: Iterator[Any]) -> list[Any]:
        """Queue ``frames``; the packets of every whole encoder frame available."""
        for frame in frames:
            self._fifo.write(frame)
        packets: list[Any] = []
        while self._fifo.samples >= self._frame_size:
            packets += self._encode(self._fifo.read(self._frame_size))
        return packets

    def finish(self) -> list[Any]:
        """Encode what is left and flush the encoder."""
        packets = self._encode(self._fifo.read()) if self._fifo.samples else []
        return packets + list(self._stream.encode(None))

    def _encode(self, frame: Any) -> list[Any]:
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += frame.samples
        return list(self._stream.encode(frame))
