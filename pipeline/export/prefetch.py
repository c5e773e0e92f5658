"""Running a producer (demux, decode, scale, resample) on its own thread, a few items ahead.

FFmpeg's codecs and scalers release the GIL, so decoding the next frames on one
thread while the encoder works on another uses a second core. The queue is
bounded, so memory stays the same whatever the session's length; an error in
the producer is raised in the consumer, where it would have been raised anyway.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
#: Items produced ahead of the consumer (decoded frames: bounded memory).
DEPTH = 32
_END = object()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """Iterate ``source`` on a worker thread; call :meth:`close` when done (or on error)."""

    def __init__(self, source: Iterator[T], *, name: str, depth: int = DEPTH, batch: int = 1) -> None:
        self._source = source
        # Items travel in lists of ``batch``: each hand-off between threads can wait for
        # the scheduler, which on a busy machine costs more than decoding a frame.
        self._batch = batch
        self._ready: deque[T] = deque()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth // batch))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            chunk: list[T] = []
            for item in self._source:
                chunk.append(item)
                if len(chunk) >= self._batch:
                    if not self._put(chunk):
                        return
                    chunk = []
            if chunk and not self._put(chunk):
                return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Raised(exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._ready:
            return self._ready.popleft()
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # stay exhausted
            raise StopIteration
        if isinstance(item, _Raised):
            raise item.error
        self._ready.extend(item)  # type: ignore[arg-type]  # only producer chunks remain
        return self._ready.popleft()

    def close(self) -> None:
        """Stop the producer and wait for it (it closes its source, so files are released)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        self._thread.join()
